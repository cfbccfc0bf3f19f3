// The protocol core of one link: a lossless, ordered stream of DATA frames
// in each direction that outlives the connections carrying it. Pure, in the
// spirit of boringtun's Tunn: bytes in, actions out; no sockets, no Asio, no
// TUN, no clock reads (callers pass `now`). A session owns one or more links
// (session.hpp); the I/O shell (link.hpp) owns the socket and does the
// syscalls around this core.
//
// Send (TUN -> peer):
//   1. enqueue(pkt) numbers a packet with the link's next data sequence
//      number (dsn) and appends it to the replay buffer: into the last DATA
//      frame while no byte of it was sent and it stays within batch_bytes
//      (headers compressed against an earlier packet of the frame when they
//      repeat, data_frame.hpp), else as a new frame.
//   2. output(iov) names the next bytes to write: queued frames (the core's
//      ACK, HEARTBEAT, CLOSE and whole frames from above, queue_frame()) only
//      between whole DATA frames and never ahead of a realtime packet
//      (below), then DATA from the buffer's cursor. sent(n) tells how many
//      the socket took.
//   Admission while connected is the send queue's rule (send_queue.hpp): over
//   send_queue_bytes of unsent data a new packet is dropped (counted) unless
//   the connection is stalled: the socket took nothing (blocked() without
//   unblocked()) or the peer acknowledged nothing for stall_after. Within
//   the byte limit the queue is also limited in time: while the frame at the
//   head of the unsent data has waited longer than CoDel's target (5 ms) for
//   an interval (100 ms), new packets are dropped at CoDel's rate (codel.hpp),
//   but only while data moves: the socket is not blocked and the peer's ACKs
//   advanced within kCodelAckWindow. While disconnected, packets are kept within the
//   buffer's byte and age limits.
//
// Receive (peer -> TUN):
//   1. The shell reads into rx_space() and calls received(n).
//   2. next() returns events one at a time: a packet to deliver (valid until
//      next() has returned twice more, or rx_done()), a packet skipped as a
//      duplicate, a frame for the layers above (control, realtime: types the
//      core does not handle itself), the peer's CLOSE or ERROR, or a fault.
//   3. When next() says none, the shell flushes what it handed on (the TUN
//      coalescer may point into the receive buffer) and calls rx_done(),
//      which keeps the partial frame and may queue an ACK (every ack_bytes).
//
// Resume: attach(peer_rx) drops what the peer already has and sends the rest
// again, in order; the receiver drops any dsn already delivered.
//
// Protection (frame_guard.hpp): a connection attached with keys has every
// frame sealed as output() hands it out (whole frames move into the guard's
// stage, which output() then names; sent() consumes it) and opened in place
// before parsing. A frame that fails to open is a fault (forged_frame,
// counted in rx_forged); a frame that cannot be sealed ends the connection
// at the next tick() (seal_failed). The keys die with the connection.
//
// Memory (what an idle link costs; docs/measurements.md, "Memory"): nothing
// is allocated up front. The receive buffer starts at kRxFloor at the first
// rx_space() and doubles whenever a read filled it (or a partial frame fills
// it), up to recv_buffer_bytes but never below what the largest frame needs
// (2 x (16 + 65535)); the replay buffer, the queue of whole frames and the
// sealing stage grow on demand likewise. tick() gives memory back once the
// link has carried no DATA in either direction for kTrimAfter: the receive
// buffer shrinks to kRxFloor when nothing is buffered (released while
// disconnected), the replay buffer and the stage are trimmed when empty
// (replay_buffer.hpp, frame_guard.hpp), the frame queue shrinks to its floor.
// The data path never allocates per packet: growth is by doubling, so rare,
// and shrinking happens on the tick only. memory_bytes() is what the link
// holds on the heap; shed() relieves a memory limit (drop_memory).
//
// Realtime on the bulk link: a realtime-class packet that rides this link
// (enqueue(..., realtime), when the session has no realtime link connected)
// goes before the queued frames from above (control messages). While one
// waits unsent, those go one at a time: the DATA up to the realtime packets
// queued so far first, then one frame, then the DATA up to those queued
// meanwhile, and so on. A realtime packet thus waits for at most the queued
// frame already begun (on a protected connection: the sealed stage,
// FrameGuard::kStageBytes plus a frame). A queued frame waits for the
// realtime packets queued before its turn and for the frames ahead of it.
// ACK, HEARTBEAT and CLOSE never wait for realtime: they go to the head of
// the queue (behind a frame begun) and out at the next DATA frame boundary,
// so the peer's view of the link stays current however much realtime
// flows. A realtime packet behind more than send_queue_bytes of DATA is
// late anyway and holds nothing back, nor does one replayed after a resume.
//
// Realtime links (LinkConfig::realtime): enqueue_rt() writes one RT_DATA
// frame per packet carrying the session-level realtime sequence (the
// receiver keeps the first copy, first_copy.hpp); a frame is released once
// wholly sent (no ACK, no replay of what was sent: a copy on another link, or
// nothing, covers a connection lost with it in flight), and what waits
// unsent is kept across a reconnect for at most buffer_age.
#pragma once

#include <tunnel/codel.hpp>
#include <tunnel/data_frame.hpp>
#include <tunnel/fault.hpp>
#include <tunnel/frame_guard.hpp>
#include <tunnel/liveness.hpp>
#include <tunnel/replay_buffer.hpp>
#include <tunnel/send_queue.hpp>
#include <tunnel/wire.hpp>

#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tunnel {

struct LinkConfig {
  unsigned mtu = 1500;
  std::size_t send_queue_bytes = 256 * 1024;   // unsent bytes while connected
  std::size_t recv_buffer_bytes = 256 * 1024;
  std::size_t buffer_bytes = 8u << 20;         // replay buffer
  std::chrono::milliseconds buffer_age{5000};
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds dead_interval{3000};
  std::chrono::milliseconds hold{30000};
  std::size_t ack_bytes = 1u << 20;            // ACK after this many DATA bytes (and on every tick)
  std::chrono::milliseconds stall_after{500};  // see "Admission" above
  std::size_t batch_bytes = 8192;              // largest DATA frame packets share; 0: one a frame
  bool compress = true;
  bool realtime = false;                       // a realtime link: see "Realtime links" above
};

// The settings of a realtime link, from a bulk link's: a short queue, and
// nothing older than 150 ms sent after a reconnect.
LinkConfig realtime_link_config(const LinkConfig& bulk);

struct LinkCounters {
  // send direction
  std::uint64_t tx_packets = 0;       // packets queued (numbered)
  std::uint64_t tx_bytes = 0;         // their IP bytes
  std::uint64_t tx_frames = 0;        // DATA frames they went into
  std::uint64_t tx_compressed = 0;    // packets sent as compressed records
  std::uint64_t drop_queue_full = 0;  // connected, but the tunnel could not keep up
  std::uint64_t drop_codel = 0;       // bulk dropped because its queue stood longer than CoDel allows
  std::uint64_t replayed = 0;         // packets sent again after a resume
  std::uint64_t peak_buffered = 0;    // most packets waiting to be sent at once
  // receive direction
  std::uint64_t rx_packets = 0;       // packets received and delivered
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_duplicates = 0;    // packets already delivered (dropped)
  std::uint64_t rx_rt_copies = 0;     // realtime: a later copy of a packet another link delivered (dropped)
  std::uint64_t rx_missing = 0;       // dsns skipped: the sender dropped them
  std::uint64_t drop_spoofed = 0;     // source outside the peer's prefixes (counted by the shell)
  // control
  std::uint64_t acks_sent = 0, acks_received = 0;
  std::uint64_t heartbeats_sent = 0, heartbeats_received = 0;
  std::uint64_t drop_control = 0;     // control frame dropped: its queue was full
  std::uint64_t connections = 0;      // connections attached
  std::uint64_t resumes = 0;          // of those, resuming the link
  std::uint64_t send_calls = 0;       // counted by the shell
  std::uint64_t rx_forged = 0;        // frames that failed to open (protected connections)
  std::array<std::uint64_t, wire::kParseStatusCount> proto_errors{};

  LinkCounters& operator+=(const LinkCounters& o);
};

class LinkCore {
 public:
  using Clock = std::chrono::steady_clock;

  LinkCore(const LinkConfig& cfg, Clock::time_point now);
  LinkCore(const LinkCore&) = delete;
  LinkCore& operator=(const LinkCore&) = delete;

  // ---- connection life
  // A connection of protocol `version` is attached after its handshake; the
  // peer has every dsn up to `peer_rx`. `early` are bytes read after the
  // handshake frame (at most rx capacity; more is a fault the caller avoids).
  // With `crypto` every frame from now on is sealed and opened with it
  // (the keys of this connection: see "Protection" above).
  void attach(std::uint64_t peer_rx, std::uint8_t version, std::span<const std::uint8_t> early,
              Clock::time_point now, std::optional<seal::LinkCrypto> crypto = std::nullopt);
  // The connection is gone; everything unacknowledged will be sent again.
  void detach(Clock::time_point now);
  // The session starts over: everything buffered is dropped (counted) and
  // the sequence state reset, in both directions.
  void reset(Clock::time_point now);
  // The session ends: everything buffered is dropped (counted).
  void clear() { tx_.clear(); }
  bool connected() const { return connected_; }
  std::uint8_t version() const { return version_; }
  bool is_protected() const { return guard_.has_value(); }

  // ---- send
  // Queues one packet (a well-formed IP packet of at most the MTU); false
  // when it was dropped (counted). `realtime`: a realtime-class packet on
  // the bulk link, which queued frames do not overtake ("Realtime on the
  // bulk link" above).
  bool enqueue(std::span<const std::uint8_t> pkt, Clock::time_point now, bool realtime = false);
  // A realtime link's enqueue(): one RT_DATA frame carrying `rseq`.
  bool enqueue_rt(std::span<const std::uint8_t> pkt, std::uint64_t rseq, Clock::time_point now);
  bool realtime() const { return cfg_.realtime; }
  // Fills `iov` with the next bytes to write and returns how many entries
  // (0: nothing to write). The memory stays valid until sent() or any other
  // non-const call.
  int output(iovec (&iov)[2]);
  // The socket took `n` bytes of the last output().
  void sent(std::size_t n, Clock::time_point now);
  // The socket would block / is writable again (the stall rule's input).
  void blocked(Clock::time_point now);
  void unblocked() { blocked_ = false; }
  bool is_blocked() const { return blocked_; }
  // Queues CLOSE behind the frame in progress.
  void queue_close();
  // Queues a whole encoded frame (its version byte is set to the
  // connection's) to go out between DATA frames. Frames queued here are not
  // replayed after a reconnect (the caller's protocol resends what it must)
  // and are dropped on detach. False (counted in drop_control) when the
  // queue holds more than kMaxQueued bytes or the link is not connected.
  bool queue_frame(std::span<const std::uint8_t> frame);
  static constexpr std::size_t kMaxQueued = 256 * 1024;
  // CoDel acts only when the peer's ACKs advanced within this long (they come every tick, 100 ms).
  static constexpr std::chrono::milliseconds kCodelAckWindow{250};
  // Bytes of queued whole frames not yet written (what counts against kMaxQueued).
  std::size_t queued_bytes() const { return xq_.size() - xq_off_; }

  // ---- receive
  std::span<std::uint8_t> rx_space();
  void received(std::size_t n, Clock::time_point now);

  enum class RxKind : std::uint8_t {
    none,       // nothing more in the buffer: flush, then rx_done()
    packet,     // deliver `packet`
    skipped,    // a packet was dropped (duplicate): the shell flushes what it handed on
    frame,      // `frame` is for the layers above (valid until the next call)
    closed,     // the peer sent CLOSE
    error,      // the peer sent ERROR: `text` is its reason
    fault,      // the stream is corrupt or out of protocol: `fault`, `parse`
  };
  struct RxEvent {
    RxKind kind = RxKind::none;
    std::span<const std::uint8_t> packet;
    wire::Frame frame;
    std::string_view text;
    Fault fault = Fault::none;
    wire::ParseStatus parse = wire::ParseStatus::ok;
  };
  RxEvent next(Clock::time_point now);
  // Keeps the unparsed rest; true when an ACK was queued (the shell writes).
  bool rx_done();

  // ---- memory (see "Memory" above)
  static constexpr std::size_t kRxFloor = 4 * 1024;
  static constexpr std::size_t kXqFloor = 512;
  static constexpr std::chrono::milliseconds kTrimAfter{2000};
  std::size_t memory_bytes() const;
  // Drops the oldest frame of the replay buffer (drop_memory); its bytes, or
  // 0 when nothing can be dropped. trim_now() then gives the memory back.
  std::size_t shed() { return tx_.shed_front(); }
  std::int64_t oldest_frame_ms() const { return tx_.front_since_ms(); }
  void trim_now();

  // ---- timers
  // Heartbeats and ACKs due, the dead interval and the buffer's age limit.
  // Returns why the connection must be dropped, or Fault::none.
  Fault tick(Clock::time_point now);
  // True when the link has been without a connection for the hold time.
  bool expired(Clock::time_point now) const { return live_.expired(now); }

  std::uint64_t rx_last() const { return rx_last_; }  // last dsn delivered (for resume)
  const Liveness& liveness() const { return live_; }
  const ReplayBuffer& buffer() const { return tx_; }
  const LinkCounters& counters() const { return c_; }
  LinkCounters& counters() { return c_; }
  bool has_output() const {
    return xq_off_ < xq_.size() || !tx_.unsent().empty() || (guard_ && guard_->staged());
  }

 private:
  static std::int64_t to_ms(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }
  // `urgent` (ACK, HEARTBEAT, CLOSE): ahead of the queued frames not begun.
  bool queue_control(const std::uint8_t* p, std::size_t n, bool urgent);
  // Queued frames (see "Realtime on the bulk link"): the bytes of the frame
  // at `off` that xq_ holds; whether a realtime packet waits unsent; how many
  // queued bytes may go now, before any DATA (0: DATA first; it also fixes
  // the gate); with frames still waiting after that turn, how much DATA may
  // go before them; and the bookkeeping once `n` queued bytes went.
  std::size_t xq_frame_at(std::size_t off) const;
  bool realtime_waits() const;
  std::size_t queued_turn();
  std::size_t data_before_queued(bool after_turn) const;
  void xq_consumed(std::size_t n);
  void queue_ack();
  bool stalled(Clock::time_point now) const;
  void stage();  // moves whole frames into the guard's stage, sealed
  void rx_reserve(std::size_t cap);  // the receive buffer holds at least `cap` (keeps its bytes)
  std::size_t rx_max() const;

  std::optional<FrameGuard> guard_;
  bool seal_failed_ = false;
  bool staged_unacked_ = false;  // stage() sent the first frame awaiting an ACK

  LinkConfig cfg_;
  Liveness live_;
  bool connected_ = false;
  std::uint8_t version_ = wire::kVersion;
  bool blocked_ = false;
  Clock::time_point blocked_since_{};

  ReplayBuffer tx_;
  SendQueue queue_;
  CoDel codel_;
  wire::DataWriter writer_;
  std::int64_t now_ms_;  // frame timestamps for the age limit: set every tick, not read per packet
  std::uint64_t next_dsn_ = 1;
  std::vector<std::uint8_t> xq_;  // queued whole frames, sent from xq_off_
  std::size_t xq_off_ = 0;
  std::size_t xq_next_ = 0;       // start of the first queued frame not begun (> xq_off_: one is half sent)
  std::size_t xq_urgent_ = 0;     // end of the ACK/HEARTBEAT/CLOSE run at the head (<= xq_off_: none)
  std::size_t out_xq_ = 0;        // queued bytes in the last output()
  std::uint64_t rt_end_ = 0;      // stream position after the last realtime packet's frame (0: none)
  std::uint64_t gate_ = 0;        // with gate_set_: the next queued frame waits until DATA is sent up to it
  bool gate_set_ = false;

  std::unique_ptr<std::uint8_t[]> rb_;
  std::size_t rb_cap_ = 0, rlen_ = 0, roff_ = 0;
  bool rx_filled_ = false;             // the last read filled the buffer: grow it
  std::uint64_t quiet_tx_ = 0, quiet_rx_ = 0;  // DATA counters at the last tick
  Clock::time_point busy_at_{};        // when the tick last saw DATA move
  wire::DataReader reader_;
  bool in_data_ = false;
  std::uint64_t data_dsn_ = 0;  // dsn of the next packet the reader returns
  std::uint64_t rx_last_ = 0;   // last dsn delivered
  bool rx_started_ = false;     // any DATA received in this session
  std::uint64_t acked_sent_ = 0;
  std::size_t rx_unacked_bytes_ = 0;
  wire::Limits limits_;

  LinkCounters c_;
};

}  // namespace tunnel
