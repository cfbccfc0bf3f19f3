// The data path between a TUN device and one MPTCP connection.
//
// Send (TUN -> tunnel):
//   1. The TUN fd turns readable; up to `tun_batch` packets are read, each
//      straight into the send queue behind room for its frame header.
//   2. Each packet is classified; non-UDP is dropped (counted) unless allowed.
//   3. The DATA header (with the next data sequence number) is written in
//      front of the packet in place: no copy.
//   4. The whole queue goes to the socket in one send(); what the socket does
//      not take waits for writability. TCP_NOTSENT_LOWAT bounds the kernel's
//      share, the queue's fixed size bounds ours: when it is full, packets
//      are read into scratch and dropped (counted), so the TUN never backs up.
// Receive (tunnel -> TUN):
//   1. The socket turns readable; as many bytes as fit are read into the
//      receive buffer.
//   2. Every whole frame is parsed and validated (wire::parse_frame); a DATA
//      frame's packet is written to the TUN unchanged, or, with vnet_hdr,
//      joined with the next ones of its flow into one UDP GSO write that the
//      kernel splits back into the same datagrams.
//   3. A partial frame moves to the buffer's front and waits for more bytes.
//   4. A malformed frame closes the connection with its reason and a counter.
//
// Single-threaded: every method and handler runs on the io_context's thread.
#pragma once

#include <tunnel/udp_gso.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tunnel {

struct DatapathConfig {
  unsigned mtu = 1500;                       // largest packet read from the TUN
  std::size_t send_queue_bytes = 256 * 1024; // userspace frames not yet taken by the socket
  std::size_t recv_buffer_bytes = 256 * 1024;
  unsigned tun_batch = 128;                  // TUN packets per wake-up before yielding
  unsigned recv_batch = 16;                  // socket reads per wake-up before yielding
  bool allow_non_udp = false;
  // The TUN was opened with IFF_VNET_HDR: reads carry a virtio-net header, and
  // consecutive same-flow datagrams are written as one UDP GSO packet.
  bool vnet_hdr = false;
};

struct DatapathCounters {
  // TUN -> tunnel
  std::uint64_t tun_rx_packets = 0;   // packets read from the TUN
  std::uint64_t tx_packets = 0;       // DATA frames queued for the tunnel
  std::uint64_t tx_bytes = 0;         // IP bytes in them
  std::uint64_t drop_non_udp = 0;
  std::uint64_t drop_malformed = 0;   // TUN gave something that is not one IP packet
  std::uint64_t drop_queue_full = 0;  // tunnel could not keep up
  std::uint64_t drop_no_tunnel = 0;   // no connection was attached
  std::uint64_t drop_disconnect = 0;  // queued frames lost when a connection closed
  // tunnel -> TUN
  std::uint64_t rx_packets = 0;       // DATA frames received
  std::uint64_t rx_bytes = 0;
  std::uint64_t tun_tx_packets = 0;   // packets written to the TUN
  std::uint64_t drop_tun_write = 0;   // TUN refused a packet
  std::uint64_t tun_writes = 0;       // write() calls to the TUN (packets/writes = GSO factor)
  std::uint64_t dsn_gaps = 0;         // DATA frames whose dsn was not the next expected
  std::uint64_t rx_control_frames = 0;
  std::uint64_t tx_heartbeats = 0;
  std::uint64_t drop_heartbeat = 0;
  std::array<std::uint64_t, wire::kParseStatusCount> proto_errors{};  // by wire::ParseStatus
  // connections
  std::uint64_t connections = 0;
  std::uint64_t send_calls = 0;       // send() calls that moved bytes (frames/call = batching)
};

class Datapath {
 public:
  using CloseHandler = std::function<void(const std::string& reason)>;

  Datapath(boost::asio::io_context& io, int tun_fd, const DatapathConfig& cfg);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Starts reading the TUN. Until a connection is attached, packets are
  // dropped and counted as drop_no_tunnel.
  void start();
  // Hands a connected socket to the data path. `on_close` runs (posted, never
  // inline) once when the connection ends for any reason but detach().
  void attach(boost::asio::ip::tcp::socket sock, CloseHandler on_close);
  // Closes the current connection, if any, without calling its handler.
  void detach();
  // Queues a HEARTBEAT frame and flushes. Also what makes a fresh MPTCP
  // connection fully established, so the PM opens the other subflows without
  // waiting for user data. Dropped (counted) when the queue is full.
  void send_heartbeat();
  // Sends a CLOSE frame (best effort, non-blocking) and detaches.
  void close_gracefully();
  // Stops all I/O; the TUN fd is left open (its owner closes it).
  void stop();

  bool attached() const { return sock_.has_value(); }
  int socket_fd();  // -1 when detached
  const DatapathCounters& counters() const { return c_; }

 private:
  void wait_tun();
  void on_tun_readable();
  void flush();
  void wait_writable();
  void wait_readable();
  void on_sock_readable();
  bool handle_frame(const wire::Frame& f);
  void write_tun(std::span<const std::uint8_t> pkt);
  void flush_tun();
  void fail(const std::string& reason);
  void discard_queue();

  boost::asio::io_context& io_;
  DatapathConfig cfg_;
  boost::asio::posix::stream_descriptor tun_;
  std::optional<boost::asio::ip::tcp::socket> sock_;
  CloseHandler on_close_;
  std::uint64_t generation_ = 0;  // bumped per connection; stale handlers compare it
  bool write_armed_ = false;
  bool stopped_ = false;

  // Send queue: frames in [head_, tail_) of sq_; head_frame_ is the offset of
  // the frame that holds byte head_ (for counting what a disconnect loses).
  std::unique_ptr<std::uint8_t[]> sq_;
  std::size_t sq_cap_ = 0, head_ = 0, tail_ = 0, head_frame_ = 0;
  std::unique_ptr<std::uint8_t[]> scratch_;  // reads destined to be dropped
  std::uint64_t next_dsn_ = 1;

  // Receive buffer: unparsed bytes in [0, rlen_).
  std::unique_ptr<std::uint8_t[]> rb_;
  std::size_t rb_cap_ = 0, rlen_ = 0;
  std::uint64_t expected_dsn_ = 0;  // 0: accept any
  wire::Limits limits_;
  gso::UdpCoalescer coalescer_;

  DatapathCounters c_;
};

}  // namespace tunnel
