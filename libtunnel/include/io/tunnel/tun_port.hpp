// The TUN side of the data path, shared by every session of a daemon.
//
// Read: when the TUN turns readable, up to `batch` packets are read into the
// port's own slots, each is classified (non-UDP is dropped and counted unless
// allowed), and the batch is handed to the sink in one call, which puts each
// packet in a session's link. Then the port yields to the other handlers and
// goes on.
// Write: packets from sessions are written unchanged; with vnet_hdr,
// consecutive same-flow datagrams are joined into one UDP GSO write that the
// kernel splits back into the same datagrams. flush() ends a batch.
//
// Single-threaded: every method runs on the io_context's thread.
#pragma once

#include <tunnel/udp_gso.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace tunnel {

struct TunPortConfig {
  unsigned mtu = 1500;
  unsigned batch = 128;       // packets per wake-up before yielding
  bool allow_non_udp = false;
  bool vnet_hdr = false;      // the TUN was opened with IFF_VNET_HDR
};

struct TunCounters {
  std::uint64_t rx_packets = 0;      // read from the TUN
  std::uint64_t drop_non_udp = 0;
  std::uint64_t drop_malformed = 0;  // the TUN gave something that is not one IP packet
  std::uint64_t tx_packets = 0;      // written to the TUN
  std::uint64_t writes = 0;          // write() calls (tx_packets / writes = GSO factor)
  std::uint64_t drop_write = 0;      // the TUN refused a packet
};

class TunPort {
 public:
  // Called once per read batch with the packets worth carrying (at least
  // one); the spans are valid during the call.
  using Packets = std::span<const std::span<const std::uint8_t>>;
  using Sink = std::function<void(Packets pkts)>;

  TunPort(boost::asio::io_context& io, int tun_fd, const TunPortConfig& cfg, Sink sink);
  TunPort(const TunPort&) = delete;
  TunPort& operator=(const TunPort&) = delete;

  void start();
  void stop();

  // Writes one well-formed IP packet. `pkt` must stay valid until the next
  // write() or flush() returns: the coalescer may hold it uncopied until
  // then (never longer: the next packet either joins, and the held one is
  // copied, or the held one is written first).
  void write(std::span<const std::uint8_t> pkt);
  void flush();  // writes what the coalescer holds; call before the packets' memory changes
  // Called once (posted, never inline) when the TUN is gone: a read error
  // other than EAGAIN/EINTR, end of file, or a write error that means the
  // device no longer exists (EBADFD, ENODEV, ENXIO, EPIPE, ECONNRESET). The
  // port has stopped reading; the owner should end the daemon.
  void on_failure(std::function<void(std::string why)> f) { on_failure_ = std::move(f); }
  bool failed() const { return failed_; }

  const TunCounters& counters() const { return c_; }

 private:
  void wait();
  void on_readable();
  void fail(std::string why);
  void write_failed(int err, std::size_t n);

  boost::asio::io_context& io_;
  TunPortConfig cfg_;
  boost::asio::posix::stream_descriptor fd_;
  Sink sink_;
  unsigned batch_ = 0;
  std::size_t slot_ = 0;                       // bytes per packet slot
  std::unique_ptr<std::uint8_t[]> buf_;        // batch_ slots
  std::unique_ptr<std::span<const std::uint8_t>[]> pkts_;
  gso::UdpCoalescer coalescer_;
  bool stopped_ = false;
  bool failed_ = false;
  std::function<void(std::string)> on_failure_;
  TunCounters c_;
};

}  // namespace tunnel
