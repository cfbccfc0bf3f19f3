// The sender's side of a session: DATA frames from the TUN, in order, kept
// until the peer's cumulative ACK covers them, so they can be sent again on a
// new connection. A frame holds one or more packets with consecutive dsns;
// it is known by its last one. Pure: no I/O, no clock (callers pass times in).
//
//   front                     cursor                         tail
//     | sent, not yet acked     | not yet sent (queued)        |
//
// - While connected, frames are appended at the tail and sent from the
//   cursor; ack(dsn) drops sent frames whose packets it all covers. A tail
//   frame of which no byte was sent yet may still grow (extend_tail()).
// - When the connection breaks, restart() moves the cursor back to the front:
//   everything unacknowledged will be sent again. While disconnected, new
//   frames keep being appended.
// - On resume the peer says the last dsn it received; resume_from() drops the
//   frames up to it, and sending starts at the next.
// - The buffer holds at most `max_bytes`; to make room, and when frames grow
//   older than the age limit (the age of a frame's first packet), the oldest
//   are dropped and their packets counted. A frame that is partly sent is
//   never dropped (the stream would break mid-frame).
//
// Memory: nothing is allocated until the first frame; the byte store then
// grows on demand (from kMinBytes, doubling) up to twice `max_bytes` (so that
// compaction moves each byte at most about once), the frame ring from
// kMinRing entries, doubling. Growth is never per frame (each doubling is
// rare); trim() gives memory back and is meant for a timer, never the data
// path: an empty buffer releases everything, a mostly empty one shrinks.
// shed() drops the oldest frames to relieve a memory limit (the gateway's
// --memory-limit), counted in drop_memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace tunnel {

// Every count is of packets, not frames.
struct ReplayCounters {
  std::uint64_t drop_full = 0;      // dropped to make room
  std::uint64_t drop_age = 0;       // dropped for age
  std::uint64_t drop_unsent = 0;    // of those, never sent at all (certain loss)
  std::uint64_t drop_cleared = 0;   // dropped by clear() (session destroyed)
  std::uint64_t drop_memory = 0;    // dropped by shed(): the gateway's memory limit
  std::uint64_t acked = 0;          // released by acknowledgement
};

class ReplayBuffer {
 public:
  static constexpr std::size_t kMinBytes = 16 * 1024;
  static constexpr std::size_t kMinRing = 16;  // power of two

  explicit ReplayBuffer(std::size_t max_bytes);  // allocates nothing
  ReplayBuffer(const ReplayBuffer&) = delete;
  ReplayBuffer& operator=(const ReplayBuffer&) = delete;

  // Room for one frame of up to `max_len` bytes at the tail, dropping the
  // oldest frames if needed. nullptr when that would drop a partly sent frame
  // or `max_len` exceeds the limit. Write the frame there, then commit() it
  // as holding one packet, numbered `dsn`.
  std::uint8_t* prepare(std::size_t max_len);
  void commit(std::size_t len, std::uint64_t dsn, std::int64_t now_ms);

  // True when there is a last frame and no byte of it was sent yet.
  bool tail_open() const;
  std::size_t tail_len() const;  // bytes of the last frame
  // With tail_open(): the last frame's first byte, with room for `max_more`
  // bytes after it, which extend_commit() then adds to it as one more packet
  // numbered `dsn`. nullptr when that needs more than the byte limit (nothing
  // is dropped for it). Earlier pointers into the buffer are void after it.
  std::uint8_t* extend_tail(std::size_t max_more);
  void extend_commit(std::size_t more, std::uint64_t dsn);

  // Bytes from the cursor to the tail, contiguous.
  std::span<const std::uint8_t> unsent() const;
  void sent(std::size_t n);
  bool at_frame_boundary() const;  // the cursor is not inside a frame
  std::size_t to_boundary() const; // bytes from the cursor to the end of its frame

  void ack(std::uint64_t dsn);             // releases sent frames with dsn <= `dsn`
  void restart();                          // connection lost: resend from the front
  void resume_from(std::uint64_t peer_rx); // drops frames <= peer_rx; the cursor is at the front
  std::size_t expire(std::int64_t now_ms, std::int64_t max_age_ms);  // returns frames dropped
  void clear();                            // drops everything (counted)
  // Writes `version` into the version byte of every frame held: frames
  // queued before a connection's version was chosen are sent in it.
  void stamp_version(std::uint8_t version);

  std::size_t frames() const { return count_; }
  std::size_t packets() const { return packets_; }
  std::size_t bytes() const { return static_cast<std::size_t>(tail_pos_ - front_pos()); }
  std::size_t unsent_bytes() const { return static_cast<std::size_t>(tail_pos_ - cursor_pos_); }
  std::uint64_t sent_pos() const { return cursor_pos_; }  // stream position of the next byte to send
  std::uint64_t end_pos() const { return tail_pos_; }     // stream position after the last frame
  std::size_t unsent_packets() const { return packets_ - sent_packets_; }  // in frames not wholly sent
  // When the first packet of the frame at the cursor came (its commit's
  // now_ms); -1 when nothing waits.
  std::int64_t unsent_since_ms() const { return sent_ < count_ ? at(sent_).t_ms : -1; }
  std::size_t unacked_sent_frames() const { return sent_; }
  std::uint64_t front_dsn() const;  // the first frame's last dsn; 0 when empty
  std::uint64_t last_dsn() const;   // 0 when empty
  std::size_t capacity() const { return cap_; }
  // Heap bytes held (byte store and frame ring).
  std::size_t memory_bytes() const { return cap_ + ring_cap_ * sizeof(Entry); }
  // Gives memory back (a timer's job, never per packet): everything when no
  // frame is held; else the byte store shrinks to twice what is live (at
  // least kMinBytes) when that is a quarter of it or less, and the ring
  // likewise. Pointers into the buffer are void after it.
  void trim();
  // Drops the oldest frame (counted in drop_memory); its byte count, or 0
  // when there is none or it is partly sent (the stream would break).
  std::size_t shed_front();
  // When the first packet of the oldest frame came; -1 when empty.
  std::int64_t front_since_ms() const { return count_ ? at(0).t_ms : -1; }
  std::size_t max_bytes() const { return max_bytes_; }
  const ReplayCounters& counters() const { return c_; }

 private:
  struct Entry {
    std::uint64_t pos;  // stream position of the first byte
    std::uint64_t dsn;  // of its last packet
    std::int64_t t_ms;  // when its first packet came
    std::uint32_t len;
    std::uint32_t packets;
  };
  Entry& at(std::size_t i) { return ring_[(head_ + i) & (ring_cap_ - 1)]; }
  const Entry& at(std::size_t i) const { return ring_[(head_ + i) & (ring_cap_ - 1)]; }
  std::uint64_t front_pos() const { return count_ ? at(0).pos : tail_pos_; }
  enum class Why { full, age, memory };
  bool drop_front(Why why);  // false if the front is partly sent
  void pop_front();
  void make_room(std::size_t n);
  void grow_ring();

  std::size_t max_bytes_;
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t cap_ = 0;
  std::uint64_t base_pos_ = 0;   // stream position of buf_[0]
  std::uint64_t tail_pos_ = 0;   // stream position after the last frame
  std::uint64_t cursor_pos_ = 0; // next byte to send
  std::unique_ptr<Entry[]> ring_;
  std::size_t ring_cap_ = 0, head_ = 0, count_ = 0;
  std::size_t sent_ = 0;         // frames from the front wholly before the cursor
  std::size_t packets_ = 0;      // in all frames
  std::size_t sent_packets_ = 0; // in the first sent_ frames
  ReplayCounters c_;
};

}  // namespace tunnel
