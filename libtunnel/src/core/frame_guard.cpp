// See frame_guard.hpp.
#include <tunnel/frame_guard.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {

seal::Status FrameGuard::add(std::span<const std::uint8_t> frame) {
  if (frame.size() < seal::kHeaderSize) return seal::Status::bad_length;
  const std::size_t need = frame.size() + seal::kTagSize;
  if (off_ == len_) off_ = len_ = 0;
  if (len_ + need > cap_) {
    // Grows to the high-water mark: kStageBytes plus one largest frame.
    const std::size_t ncap = std::max({len_ + need, cap_ * 2, kStageFloor});
    auto nb = std::make_unique<std::uint8_t[]>(ncap);
    if (len_ > off_) std::memcpy(nb.get(), stage_.get() + off_, len_ - off_);
    len_ -= off_;
    off_ = 0;
    stage_ = std::move(nb);
    cap_ = ncap;
  }
  std::uint8_t* p = stage_.get() + len_;
  std::memcpy(p, frame.data(), frame.size());
  const seal::Status s = c_.sealer.seal({p, need});
  if (s == seal::Status::ok) len_ += need;
  return s;
}

void FrameGuard::consumed(std::size_t n) {
  off_ += std::min(n, len_ - off_);
  if (off_ == len_) off_ = len_ = 0;
}

void FrameGuard::trim() {
  if (off_ != len_ || cap_ <= kStageFloor) return;
  stage_.reset();
  cap_ = len_ = off_ = 0;
}

FrameGuard::Opened FrameGuard::open(std::span<std::uint8_t> in, std::size_t max_body) {
  Opened o;
  if (in.size() < seal::kHeaderSize) {
    o.need_more = true;
    return o;
  }
  const auto size = seal::sealed_frame_size(in.first(seal::kHeaderSize), max_body);
  if (!size) {
    o.status = seal::Status::bad_length;
    return o;
  }
  if (in.size() < *size) {
    o.need_more = true;
    return o;
  }
  o.status = c_.opener.open(in.first(*size));
  o.sealed = *size;
  o.plain = *size - seal::kTagSize;
  return o;
}

}  // namespace tunnel
