// LinkCore's memory: buffers allocated on demand, trimmed when the link is
// quiet (link_core.hpp, "Memory").
#include <tunnel/link_core.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {

// The receiver must be able to hold the largest frame a peer may send,
// whatever our MTU.
std::size_t LinkCore::rx_max() const {
  return std::max(cfg_.recv_buffer_bytes, 2 * (wire::kDataHeaderSize + wire::kMaxPacket));
}

void LinkCore::rx_reserve(std::size_t cap) {
  cap = std::min(cap, rx_max());
  if (cap == rb_cap_) return;
  auto nb = std::make_unique<std::uint8_t[]>(cap);
  const std::size_t keep = std::min(rlen_, cap);
  if (keep) std::memcpy(nb.get(), rb_.get(), keep);
  rb_ = std::move(nb);
  rb_cap_ = cap;
  rlen_ = keep;
}

std::size_t LinkCore::memory_bytes() const {
  return sizeof(LinkCore) + rb_cap_ + tx_.memory_bytes() + xq_.capacity() + (guard_ ? guard_->capacity() : 0);
}

void LinkCore::trim_now() {
  if (rlen_ == 0 && roff_ == 0 && rb_cap_ > (connected_ ? kRxFloor : 0)) {
    if (connected_) {
      rx_reserve(kRxFloor);
    } else {
      rb_.reset();
      rb_cap_ = 0;
    }
    rx_filled_ = false;
  }
  tx_.trim();
  if (guard_) guard_->trim();
  if (xq_off_ == xq_.size() && xq_.capacity() > kXqFloor) {
    std::vector<std::uint8_t>().swap(xq_);
    xq_off_ = xq_next_ = 0;
    xq_.reserve(kXqFloor);
  }
}

}  // namespace tunnel
