#include <tunnel/first_copy.hpp>

namespace tunnel::realtime {

void FirstCopyFilter::reset() noexcept {
  bits_.fill(0);
  top_ = 0;
  started_ = false;
}

FirstCopyFilter::Verdict FirstCopyFilter::accept(std::uint64_t rseq) noexcept {
  if (!started_) {
    started_ = true;
    // Slots below the first sequence count as seen, so they are not "missing".
    bits_.fill(~std::uint64_t{0});
    top_ = rseq;
  }
  if (rseq >= top_) {
    const std::uint64_t jump = rseq + 1 - top_;
    if (jump > kWindow) {
      // The whole window leaves, and so do the skipped sequences that fall
      // below the new window; the rest of the skipped ones stay in it, unseen.
      std::uint64_t seen = 0;
      for (auto w : bits_) seen += static_cast<std::uint64_t>(__builtin_popcountll(w));
      c_.missing += (kWindow - seen) + (jump - kWindow);
      bits_.fill(0);
    } else {
      // Each new slot reuses the slot of the sequence kWindow below it.
      for (std::uint64_t s = top_; s <= rseq; ++s) {
        if (!test(s)) ++c_.missing;
        clear(s);
      }
    }
    top_ = rseq + 1;
    set(rseq);
    ++c_.delivered;
    return Verdict::deliver;
  }
  if (top_ - rseq > kWindow) {
    ++c_.too_old;
    return Verdict::too_old;
  }
  if (test(rseq)) {
    ++c_.duplicates;
    return Verdict::duplicate;
  }
  set(rseq);
  ++c_.delivered;
  return Verdict::deliver;
}

}  // namespace tunnel::realtime
