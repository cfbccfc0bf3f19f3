// The receiver's first-copy filter for realtime packets: each realtime
// sequence (realtime_wire.hpp) is delivered once, whichever link brings it
// first; later copies are dropped. A sliding window of kWindow sequences
// below the highest seen remembers what arrived; anything older is dropped as
// too old. Pure, fixed size, no allocation.
#pragma once

#include <array>
#include <cstdint>

namespace tunnel::realtime {

struct FirstCopyCounters {
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;  // a copy of a sequence already delivered
  std::uint64_t too_old = 0;     // below the window: dropped
  std::uint64_t missing = 0;     // sequences that left the window never seen (lost on every link)
};

class FirstCopyFilter {
 public:
  static constexpr std::uint64_t kWindow = 1024;
  enum class Verdict : std::uint8_t { deliver, duplicate, too_old };

  Verdict accept(std::uint64_t rseq) noexcept;
  // A new session: the next sequence accepted starts the window.
  void reset() noexcept;

  const FirstCopyCounters& counters() const noexcept { return c_; }

 private:
  bool test(std::uint64_t s) const noexcept { return bits_[(s / 64) % kWords] >> (s % 64) & 1; }
  void set(std::uint64_t s) noexcept { bits_[(s / 64) % kWords] |= std::uint64_t{1} << (s % 64); }
  void clear(std::uint64_t s) noexcept { bits_[(s / 64) % kWords] &= ~(std::uint64_t{1} << (s % 64)); }

  static constexpr std::size_t kWords = kWindow / 64;
  std::array<std::uint64_t, kWords> bits_{};
  std::uint64_t top_ = 0;  // one past the highest sequence seen
  bool started_ = false;
  FirstCopyCounters c_;
};

}  // namespace tunnel::realtime
