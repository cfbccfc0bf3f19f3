// Token-bucket pacer for the bulk class, pure (clock passed in). Paces a
// session's bulk just below the summed path rates so that the standing queue
// forms in the tunnel, where CoDel drops bulk and realtime jumps it, rather
// than in a subflow's send queue or the line's shaper.
//
// Contract: ready(now) says whether the next packet may be sent now; after
// sending it, call sent(now, bytes). A packet may take the bucket below
// zero (one packet of debt), so any packet size passes. wait(now) is how
// long until ready(now) turns true (zero when it is). A rate of 0 means
// unpaced: always ready.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace tunnel {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  Pacer() = default;
  // `rate_bps` bits per second; `burst_bytes` the bucket's depth.
  Pacer(std::uint64_t rate_bps, std::uint32_t burst_bytes, Clock::time_point now) { set_rate(rate_bps, burst_bytes, now); }

  void set_rate(std::uint64_t rate_bps, std::uint32_t burst_bytes, Clock::time_point now) noexcept {
    rate_Bps_ = rate_bps / 8;
    depth_ = static_cast<std::int64_t>(burst_bytes) * kScale;
    tokens_ = depth_;
    last_ = now;
  }

  bool ready(Clock::time_point now) noexcept {
    refill(now);
    return rate_Bps_ == 0 || tokens_ >= 0;
  }

  void sent(Clock::time_point now, std::uint32_t bytes) noexcept {
    if (rate_Bps_ == 0) return;
    refill(now);
    tokens_ -= static_cast<std::int64_t>(bytes) * kScale;
  }

  std::chrono::nanoseconds wait(Clock::time_point now) noexcept {
    if (ready(now)) return std::chrono::nanoseconds(0);
    // tokens are bytes * 1e9; they grow by rate_Bps_ per nanosecond.
    return std::chrono::nanoseconds((-tokens_ + static_cast<std::int64_t>(rate_Bps_) - 1) /
                                    static_cast<std::int64_t>(rate_Bps_));
  }

  std::uint64_t rate_bps() const noexcept { return rate_Bps_ * 8; }

 private:
  static constexpr std::int64_t kScale = 1'000'000'000;  // tokens in byte-nanoseconds per second

  void refill(Clock::time_point now) noexcept {
    if (rate_Bps_ == 0 || now <= last_) return;
    const auto dt = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count();
    last_ = now;
    // Cap dt at the time to fill the bucket, so the product cannot overflow.
    const auto rate = static_cast<std::int64_t>(rate_Bps_);
    const std::int64_t to_full = (depth_ - tokens_) / rate + 1;
    tokens_ = std::min(depth_, tokens_ + std::min<std::int64_t>(dt, to_full) * rate);
  }

  std::uint64_t rate_Bps_ = 0;
  std::int64_t depth_ = 0, tokens_ = 0;
  Clock::time_point last_{};
};

}  // namespace tunnel
