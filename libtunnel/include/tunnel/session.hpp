// One tunnel session: the state that outlives a connection (data sequence
// numbers, the replay buffer, what was received) plus, while there is one,
// the MPTCP connection that carries it. The handshake happens before a
// connection is attached (see handshake.hpp and the daemon).
//
// Send (TUN -> tunnel): enqueue() numbers a packet and appends it to the
// replay buffer: to the last DATA frame when no byte of it was sent yet and it
// stays within `batch_bytes` (with its headers compressed against an earlier
// packet of that frame when they repeat, data_frame.hpp), else as a new frame.
// So packets share a frame exactly when they wait: those of one TUN read
// batch, and those queued behind a busy socket. flush() sends from the
// buffer's cursor, with pending control frames (ACK, HEARTBEAT) slipped in
// only between whole DATA frames. While connected, more than
// `send_queue_bytes` of unsent data means the tunnel cannot keep up: new
// packets are dropped and counted, which keeps the added latency bounded,
// unless the socket has taken nothing, or the peer acknowledged nothing, for
// `stall_after` (a stalled connection is treated like an outage). What a
// stall kept, like a resume's replay, does not count against the send queue
// once data moves again: new packets get the whole send queue behind it until
// it has been sent. While disconnected, packets are kept up to the buffer's
// byte and age limits (oldest dropped first, counted) for replay.
//
// Receive (tunnel -> TUN): every whole frame is parsed and validated; each
// packet of a DATA frame (rebuilt if compressed) whose dsn was already
// delivered is a duplicate and dropped; the rest are written to the TUN
// unchanged, after the optional source check. The receiver acknowledges
// cumulatively (ACK frames) on each tick and after every MiB, so the sender
// can release its buffer.
//
// Resume: attach() is told the last dsn the peer received; the buffer drops
// what that covers and the rest is sent again, in order.
#pragma once

#include <tunnel/data_frame.hpp>
#include <tunnel/liveness.hpp>
#include <tunnel/replay_buffer.hpp>
#include <tunnel/send_queue.hpp>
#include <tunnel/tun_port.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace tunnel {

struct SessionConfig {
  unsigned mtu = 1500;
  std::size_t send_queue_bytes = 256 * 1024;   // unsent bytes while connected
  std::size_t recv_buffer_bytes = 256 * 1024;
  unsigned recv_batch = 16;                    // socket reads per wake-up before yielding
  std::size_t buffer_bytes = 8u << 20;         // replay buffer
  std::chrono::milliseconds buffer_age{5000};
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds dead_interval{3000};
  std::chrono::milliseconds hold{30000};
  // ACK when this many DATA bytes arrived since the last one, and on every
  // tick (100 ms). Frequent ACKs are reverse traffic that slowed the other
  // direction's MPTCP flow in the hybrid demo (uplink 7.6 of 12 Mbit/s when
  // acking every 64 frames, 11 when acking per tick).
  std::size_t ack_bytes = 1u << 20;
  // A socket that took nothing, or whose peer acknowledged nothing, for this
  // long is stalled, not overloaded: packets beyond the send queue are kept
  // (within the buffer's limits).
  std::chrono::milliseconds stall_after{500};
  // Largest DATA frame that several packets may share (0: one packet a
  // frame), and whether repeated headers in it are compressed.
  std::size_t batch_bytes = 8192;
  bool compress = true;
};

struct SessionCounters {
  // tunnel direction
  std::uint64_t tx_packets = 0;       // packets queued (numbered)
  std::uint64_t tx_bytes = 0;         // their IP bytes
  std::uint64_t tx_frames = 0;        // DATA frames they went into
  std::uint64_t tx_compressed = 0;    // packets sent as compressed records
  std::uint64_t drop_queue_full = 0;  // connected, but the tunnel could not keep up
  std::uint64_t replayed = 0;         // packets sent again after a resume
  std::uint64_t peak_buffered = 0;    // most packets waiting to be sent at once
  // receive direction
  std::uint64_t rx_packets = 0;       // packets received and delivered
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_duplicates = 0;    // packets already delivered (dropped)
  std::uint64_t rx_missing = 0;       // dsns skipped: the sender dropped them
  std::uint64_t drop_spoofed = 0;     // source outside the peer's prefixes
  // control
  std::uint64_t acks_sent = 0, acks_received = 0;
  std::uint64_t heartbeats_sent = 0, heartbeats_received = 0;
  std::uint64_t drop_control = 0;     // control frame dropped: its queue was full
  std::uint64_t connections = 0;      // connections attached
  std::uint64_t resumes = 0;          // of those, resuming the session
  std::uint64_t send_calls = 0;
  std::array<std::uint64_t, wire::kParseStatusCount> proto_errors{};
};

class Session {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs (posted, never inline) when the connection ends for any reason but
  // detach()/close(). `clean` is true when the peer sent CLOSE.
  using CloseHandler = std::function<void(const std::string& reason, bool clean)>;
  // Decides whether a received packet may go to the TUN (anti-spoofing).
  using RxFilter = std::function<bool(std::span<const std::uint8_t> pkt)>;

  Session(boost::asio::io_context& io, TunPort& tun, const SessionConfig& cfg, std::uint64_t id, RxFilter filter = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Takes a connection whose handshake is done. `early` are bytes already
  // read after the handshake frame; `peer_rx` is the last dsn the peer has.
  void attach(boost::asio::ip::tcp::socket sock, std::span<const std::uint8_t> early, std::uint64_t peer_rx,
              CloseHandler on_close);
  // Drops the connection (keeps the session for resume). No handler runs.
  void detach(const std::string& reason);
  // Ends the connection as if it had failed: the close handler runs.
  void abort(const std::string& reason) { fail(reason); }
  // Sends CLOSE (best effort), drops the connection and the buffers.
  void close();
  // Names the session after the gateway assigned its ID; keeps what is buffered.
  void assign_id(std::uint64_t id) { id_ = id; }
  // Starts over as a new session: what was buffered for the old one is
  // dropped (counted), sequence state reset. Used when the peer did not resume.
  void reset(std::uint64_t new_id);

  // Queues one packet; true when it is the first since the last flush()
  // (the owner then owes this session a flush at the end of the batch).
  bool enqueue(std::span<const std::uint8_t> pkt);
  void flush();
  // Heartbeats, ACKs, the dead interval, buffer age. Returns false when the
  // session has been without a connection for longer than the hold time.
  bool tick(Clock::time_point now);

  std::uint64_t id() const { return id_; }
  bool connected() const { return sock_.has_value(); }
  int socket_fd() const;
  std::uint64_t rx_last() const { return rx_last_; }  // last dsn delivered (for resume)
  const Liveness& liveness() const { return live_; }
  const ReplayBuffer& buffer() const { return tx_; }
  const SessionCounters& counters() const { return c_; }
  std::uint32_t token = 0;  // MPTCP token of the current connection (set by the owner)

 private:
  void fail(const std::string& reason, bool clean = false);
  void drop_connection();
  void queue_control(const std::uint8_t* p, std::size_t n);
  void queue_ack();
  void wait_writable();
  void wait_readable();
  void on_readable();
  bool parse_frames(std::size_t& off);
  bool handle_frame(const wire::Frame& f);
  void deliver(std::uint64_t dsn, std::span<const std::uint8_t> pkt);

  boost::asio::io_context& io_;
  TunPort& tun_;
  SessionConfig cfg_;
  std::uint64_t id_;
  RxFilter filter_;
  Liveness live_;

  std::optional<boost::asio::ip::tcp::socket> sock_;
  CloseHandler on_close_;
  std::uint64_t generation_ = 0;
  bool write_armed_ = false;
  Clock::time_point write_wait_since_{};
  bool flush_pending_ = false;


  ReplayBuffer tx_;
  SendQueue queue_;  // admission while connected: cfg_.send_queue_bytes, a resume's or a stall's backlog exempt
  wire::DataWriter writer_;  // builds the replay buffer's last frame
  std::int64_t now_ms_;  // frame timestamps for --buffer-age: set every tick, not read per packet
  std::uint64_t next_dsn_ = 1;
  std::array<std::uint8_t, 512> ctl_{};  // pending control frames
  std::size_t ctl_len_ = 0, ctl_off_ = 0;

  std::unique_ptr<std::uint8_t[]> rb_;
  std::size_t rb_cap_ = 0, rlen_ = 0;
  wire::DataReader reader_;
  std::uint64_t rx_last_ = 0;   // last dsn delivered
  bool rx_started_ = false;     // any DATA received in this session
  std::uint64_t acked_sent_ = 0;
  std::size_t rx_unacked_bytes_ = 0;  // DATA bytes since the last ACK
  wire::Limits limits_;

  SessionCounters c_;
};

}  // namespace tunnel
