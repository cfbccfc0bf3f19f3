#include <tunnel/replay_buffer.hpp>
#include <tunnel/wire.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {

ReplayBuffer::ReplayBuffer(std::size_t max_bytes) : max_bytes_(max_bytes) {}

std::uint64_t ReplayBuffer::front_dsn() const { return count_ ? at(0).dsn : 0; }
std::uint64_t ReplayBuffer::last_dsn() const { return count_ ? at(count_ - 1).dsn : 0; }

std::uint8_t* ReplayBuffer::prepare(std::size_t max_len) {
  if (max_len > max_bytes_) return nullptr;
  while (bytes() + max_len > max_bytes_)
    if (!drop_front(Why::full)) return nullptr;
  if (count_ == ring_cap_) grow_ring();
  make_room(max_len);
  return buf_.get() + (tail_pos_ - base_pos_);
}

void ReplayBuffer::commit(std::size_t len, std::uint64_t dsn, std::int64_t now_ms) {
  at(count_) = Entry{tail_pos_, dsn, now_ms, static_cast<std::uint32_t>(len), 1};
  ++count_;
  ++packets_;
  tail_pos_ += len;
}

bool ReplayBuffer::tail_open() const { return count_ > 0 && cursor_pos_ <= at(count_ - 1).pos; }

std::size_t ReplayBuffer::tail_len() const { return count_ ? at(count_ - 1).len : 0; }

std::uint8_t* ReplayBuffer::extend_tail(std::size_t max_more) {
  if (!tail_open() || bytes() + max_more > max_bytes_) return nullptr;
  make_room(max_more);
  return buf_.get() + (at(count_ - 1).pos - base_pos_);
}

void ReplayBuffer::extend_commit(std::size_t more, std::uint64_t dsn) {
  Entry& e = at(count_ - 1);
  e.len += static_cast<std::uint32_t>(more);
  e.dsn = dsn;
  ++e.packets;
  ++packets_;
  tail_pos_ += more;
}

void ReplayBuffer::make_room(std::size_t n) {
  if ((tail_pos_ - base_pos_) + n <= cap_) return;
  const std::uint64_t front = front_pos();
  const std::size_t live = static_cast<std::size_t>(tail_pos_ - front);
  const std::size_t limit = 2 * max_bytes_;
  if (live + n > cap_ / 2 && cap_ < limit) {
    const std::size_t ncap = std::min(limit, std::max({cap_ * 2, live + n, kMinBytes}));
    auto nb = std::make_unique<std::uint8_t[]>(ncap);
    if (live) std::memcpy(nb.get(), buf_.get() + (front - base_pos_), live);
    buf_ = std::move(nb);
    cap_ = ncap;
  } else {
    std::memmove(buf_.get(), buf_.get() + (front - base_pos_), live);
  }
  base_pos_ = front;
}

void ReplayBuffer::grow_ring() {
  const std::size_t ncap = ring_cap_ ? ring_cap_ * 2 : kMinRing;
  auto nr = std::make_unique<Entry[]>(ncap);
  for (std::size_t i = 0; i < count_; ++i) nr[i] = at(i);
  ring_ = std::move(nr);
  ring_cap_ = ncap;
  head_ = 0;
}

void ReplayBuffer::trim() {
  if (count_ == 0) {
    buf_.reset();
    ring_.reset();
    cap_ = ring_cap_ = head_ = 0;
    base_pos_ = cursor_pos_ = tail_pos_;
    return;
  }
  const std::uint64_t front = front_pos();
  const std::size_t live = static_cast<std::size_t>(tail_pos_ - front);
  if (live * 4 <= cap_ && cap_ > kMinBytes) {
    const std::size_t ncap = std::max(kMinBytes, 2 * live);
    auto nb = std::make_unique<std::uint8_t[]>(ncap);
    std::memcpy(nb.get(), buf_.get() + (front - base_pos_), live);
    buf_ = std::move(nb);
    cap_ = ncap;
    base_pos_ = front;
  }
  if (count_ * 4 <= ring_cap_ && ring_cap_ > kMinRing) {
    std::size_t ncap = kMinRing;
    while (ncap < 2 * count_) ncap *= 2;
    auto nr = std::make_unique<Entry[]>(ncap);
    for (std::size_t i = 0; i < count_; ++i) nr[i] = at(i);
    ring_ = std::move(nr);
    ring_cap_ = ncap;
    head_ = 0;
  }
}

std::size_t ReplayBuffer::shed_front() {
  if (count_ == 0) return 0;
  const std::size_t len = at(0).len;
  return drop_front(Why::memory) ? len : 0;
}

void ReplayBuffer::pop_front() {
  packets_ -= at(0).packets;
  head_ = (head_ + 1) & (ring_cap_ - 1);
  --count_;
}

bool ReplayBuffer::drop_front(Why why) {
  if (count_ == 0) return false;
  const Entry e = at(0);
  if (sent_ > 0) {
    --sent_;
    sent_packets_ -= e.packets;
  } else {
    if (cursor_pos_ != e.pos) return false;  // partly sent
    cursor_pos_ = e.pos + e.len;
    c_.drop_unsent += e.packets;
  }
  (why == Why::age ? c_.drop_age : why == Why::memory ? c_.drop_memory : c_.drop_full) += e.packets;
  pop_front();
  return true;
}

std::span<const std::uint8_t> ReplayBuffer::unsent() const {
  return {buf_.get() + (cursor_pos_ - base_pos_), static_cast<std::size_t>(tail_pos_ - cursor_pos_)};
}

void ReplayBuffer::sent(std::size_t n) {
  cursor_pos_ += n;
  while (sent_ < count_ && at(sent_).pos + at(sent_).len <= cursor_pos_) sent_packets_ += at(sent_++).packets;
}

bool ReplayBuffer::at_frame_boundary() const { return sent_ == count_ || at(sent_).pos == cursor_pos_; }

std::size_t ReplayBuffer::to_boundary() const {
  if (sent_ == count_) return 0;
  return static_cast<std::size_t>(at(sent_).pos + at(sent_).len - cursor_pos_);
}

void ReplayBuffer::ack(std::uint64_t dsn) {
  while (sent_ > 0 && at(0).dsn <= dsn) {
    c_.acked += at(0).packets;
    sent_packets_ -= at(0).packets;
    pop_front();
    --sent_;
  }
}

void ReplayBuffer::restart() {
  cursor_pos_ = front_pos();
  sent_ = sent_packets_ = 0;
}

void ReplayBuffer::resume_from(std::uint64_t peer_rx) {
  restart();
  while (count_ > 0 && at(0).dsn <= peer_rx) {
    c_.acked += at(0).packets;
    pop_front();
  }
  cursor_pos_ = front_pos();
}

std::size_t ReplayBuffer::expire(std::int64_t now_ms, std::int64_t max_age_ms) {
  std::size_t n = 0;
  while (count_ > 0 && at(0).t_ms < now_ms - max_age_ms && drop_front(Why::age)) ++n;
  return n;
}

void ReplayBuffer::clear() {
  c_.drop_cleared += packets_;
  head_ = count_ = sent_ = packets_ = sent_packets_ = 0;
  cursor_pos_ = base_pos_ = tail_pos_;
}

void ReplayBuffer::stamp_version(std::uint8_t version) {
  for (std::size_t i = 0; i < count_; ++i) buf_[static_cast<std::size_t>(at(i).pos - base_pos_)] = version;
}

}  // namespace tunnel
