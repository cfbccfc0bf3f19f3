// The I/O shell around one link's protocol core (link_core.hpp): owns the
// connection's socket while there is one, waits for readiness through Asio
// and does the non-blocking send/recv; delivers received packets to the TUN
// port after the session's source check.
//
// Lifetime: a Link is owned by its Session through a shared_ptr, and every
// pending Asio handler holds one too. When the session goes away it calls
// orphan(): the socket is closed (pending waits complete with
// operation_aborted), no event reaches the session again, and the Link is
// freed once the last handler has run. Nothing here blocks or polls.
//
// Single-threaded: every method runs on the io_context's thread.
#pragma once

#include <tunnel/fault.hpp>
#include <tunnel/link_core.hpp>
#include <tunnel/tun_port.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace tunnel {

class Session;

class Link : public std::enable_shared_from_this<Link> {
 public:
  using Clock = LinkCore::Clock;

  Link(boost::asio::io_context& io, TunPort& tun, Session& owner, unsigned index, const LinkConfig& cfg);
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Takes a connection whose handshake is done (protocol `version`): `early`
  // are bytes read after the last handshake frame, `peer_rx` the last dsn the
  // peer has on this link. An older connection is dropped first. With
  // `crypto` every frame is sealed and opened (LinkCore::attach).
  void attach(boost::asio::ip::tcp::socket sock, std::span<const std::uint8_t> early, std::uint64_t peer_rx,
              std::uint8_t version, std::optional<seal::LinkCrypto> crypto = std::nullopt);
  // Drops the connection and keeps the stream for resume. No event.
  void detach();
  // Queues CLOSE, writes what the socket takes at once (never waits), and
  // drops the connection. No event.
  void close();
  // The session is gone: drops the connection; no event from now on.
  void orphan();
  // Ends the connection as if it had failed: the session hears of it.
  void abort(Fault why) { fail(why, {}); }

  // Queues a packet (see LinkCore::enqueue); `now` is read once per batch.
  bool enqueue(std::span<const std::uint8_t> pkt, Clock::time_point now, bool realtime = false) {
    return core_.enqueue(pkt, now, realtime);
  }
  // Writes what the core has, until the socket would block (then waits).
  void flush();
  // Timers; a dead connection is dropped and reported to the session.
  void tick(Clock::time_point now);

  bool connected() const { return sock_.has_value(); }
  int fd() const;
  unsigned index() const { return index_; }
  // The session this link belongs to; nullptr once orphaned.
  Session* session() const { return owner_; }
  LinkCore& core() { return core_; }
  const LinkCore& core() const { return core_; }

  std::uint32_t token = 0;  // MPTCP token of the current connection (0: none, or plain TCP)
  std::string remote;       // the peer's address, for logs and status

 private:
  void fail(Fault why, std::string detail);
  void drop_connection();
  void wait_readable();
  void wait_writable();
  void on_readable();
  bool drain();  // delivers what the core parsed; false when the connection ended

  boost::asio::io_context& io_;
  TunPort& tun_;
  Session* owner_;
  unsigned index_;
  LinkCore core_;
  std::optional<boost::asio::ip::tcp::socket> sock_;
  std::uint64_t generation_ = 0;  // bumped on every attach and drop: stale handlers return
  bool write_armed_ = false;
  Clock::time_point now_;         // read once per wake-up
  static constexpr unsigned kRecvBatch = 16;  // reads per wake-up before yielding
};

}  // namespace tunnel
