// CoDel-like sojourn rule for the bulk class (RFC 8289's control law), pure:
// the caller passes the clock and the sojourn time of the packet at the head
// of its bulk queue.
//
// Contract:
// - Ask only while connected and not stalled. During an outage or a stall
//   packets are kept for resume (send_queue.hpp); call reset() when the
//   connection comes back so an old episode does not carry over.
// - Ask once per packet about to leave the queue (head drop): drop() true
//   means discard that packet (count it) and ask again for the next one. A
//   queue that can only refuse at its tail (a replay buffer whose sequence
//   numbers are assigned on entry) may ask on enqueue with the head's
//   sojourn and refuse the new packet instead; the control law is the same.
// - `backlog_bytes`: bytes queued behind the head; at most one MTU never
//   counts as a standing queue.
// Never asked for realtime packets: they do not wait in the bulk queue.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tunnel {

class CoDel {
 public:
  using Clock = std::chrono::steady_clock;
  using Duration = std::chrono::nanoseconds;

  struct Params {
    Duration target = std::chrono::milliseconds(5);
    Duration interval = std::chrono::milliseconds(100);
    std::size_t mtu = 1500;
  };

  CoDel() = default;
  explicit CoDel(Params p) : p_(p) {}

  bool drop(Clock::time_point now, Duration sojourn, std::size_t backlog_bytes) noexcept {
    bool ok_to_drop = false;
    if (sojourn < p_.target || backlog_bytes <= p_.mtu) {
      above_since_ = {};
    } else if (above_since_ == Clock::time_point{}) {
      above_since_ = now + p_.interval;
    } else if (now >= above_since_) {
      ok_to_drop = true;
    }
    if (dropping_) {
      if (!ok_to_drop) {
        dropping_ = false;
        return false;
      }
      if (now >= drop_next_) {
        ++count_;
        ++drops_;
        drop_next_ = control_law(drop_next_, count_);
        return true;
      }
      return false;
    }
    if (!ok_to_drop) return false;
    dropping_ = true;
    // Resume near the last episode's rate when it ended recently.
    const std::uint32_t delta = count_ - last_count_;
    count_ = (delta > 1 && now - drop_next_ < 16 * p_.interval) ? delta : 1;
    last_count_ = count_;
    drop_next_ = control_law(now, count_);
    ++drops_;
    return true;
  }

  // The queue emptied or the connection was lost/regained: forget the episode.
  void reset() noexcept {
    above_since_ = {};
    dropping_ = false;
  }

  bool dropping() const noexcept { return dropping_; }
  std::uint64_t drops() const noexcept { return drops_; }
  const Params& params() const noexcept { return p_; }

 private:
  Clock::time_point control_law(Clock::time_point t, std::uint32_t count) const noexcept {
    return t + std::chrono::duration_cast<Duration>(p_.interval / std::sqrt(static_cast<double>(count)));
  }

  Params p_;
  Clock::time_point above_since_{};  // when the sojourn may first count as standing
  Clock::time_point drop_next_{};
  bool dropping_ = false;
  std::uint32_t count_ = 0, last_count_ = 0;
  std::uint64_t drops_ = 0;
};

}  // namespace tunnel
