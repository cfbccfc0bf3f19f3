// A token bucket for log lines that a peer can cause (handshake refusals,
// connections lost): at most `burst` lines at once and `per_second` after
// that; what is suppressed is counted and reported with the next line let
// through. Not thread-safe; callers pass `now`.
#pragma once

#include <chrono>
#include <cstdint>

namespace tunnel {

class LogLimit {
 public:
  using Clock = std::chrono::steady_clock;
  LogLimit(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // True when a line may be logged now; `suppressed` is then how many were
  // not since the last one let through (and is reset).
  bool allow(Clock::time_point now, std::uint64_t& suppressed) {
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = tokens_ + dt * rate_ > burst_ ? burst_ : tokens_ + dt * rate_;
    if (tokens_ < 1.0) {
      ++suppressed_;
      return false;
    }
    tokens_ -= 1.0;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  double rate_, burst_, tokens_;
  Clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
};

}  // namespace tunnel
