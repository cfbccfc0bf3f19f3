// The send side of a link's protocol core (link_core.hpp): admission,
// framing into the replay buffer, and what goes out next.
#include <tunnel/link_core.hpp>
#include <tunnel/realtime_wire.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {

// ---------------------------------------------------------------- send

bool LinkCore::stalled(Clock::time_point now) const {
  return (blocked_ && now - blocked_since_ > cfg_.stall_after) || live_.ack_stalled(now, cfg_.stall_after);
}

bool LinkCore::enqueue(std::span<const std::uint8_t> pkt, Clock::time_point now, bool realtime) {
  SendQueue::Admit admit = SendQueue::Admit::take;
  if (connected_) {
    admit = queue_.admit(tx_, [&] { return stalled(now); });
    if (admit == SendQueue::Admit::drop) {
      ++c_.drop_queue_full;
      return false;
    }
    // CoDel only while data moves: the peer's ACKs (sent every tick) advanced
    // lately and the socket is not blocked. A queue that stands because a
    // path died under MPTCP is a stall, and a stall keeps its packets.
    const std::int64_t head = tx_.unsent_since_ms();
    if (admit == SendQueue::Admit::take && head >= 0 && !blocked_ && !live_.ack_stalled(now, kCodelAckWindow) &&
        codel_.drop(now, std::chrono::milliseconds(to_ms(now) - head), tx_.unsent_bytes())) {
      ++c_.drop_codel;
      return false;
    }
  }
  // Into the last frame while it waits unsent and has room (the writer
  // began it: every frame comes from here); else a frame of its own.
  const std::size_t frame_cap = std::min(cfg_.batch_bytes, wire::kDataHeaderSize + wire::kMaxPacket);
  std::uint8_t* frame = nullptr;
  if (tx_.tail_open() && tx_.tail_len() + pkt.size() <= frame_cap) frame = tx_.extend_tail(pkt.size());
  if (frame) {
    const std::size_t n = writer_.append(frame, tx_.tail_len(), pkt);
    if (n < pkt.size()) ++c_.tx_compressed;
    tx_.extend_commit(n, next_dsn_++);
  } else {
    frame = tx_.prepare(wire::kDataHeaderSize + pkt.size());
    if (!frame) {
      ++c_.drop_queue_full;
      return false;
    }
    tx_.commit(writer_.begin(frame, next_dsn_, pkt), next_dsn_, to_ms(now));
    ++next_dsn_;
    ++c_.tx_frames;
  }
  if (admit == SendQueue::Admit::keep) queue_.exempt_all(tx_);
  ++c_.tx_packets;
  c_.tx_bytes += pkt.size();
  if (!connected_ || tx_.unsent_bytes() > cfg_.send_queue_bytes)
    c_.peak_buffered = std::max<std::uint64_t>(c_.peak_buffered, tx_.unsent_packets());
  if (realtime) rt_end_ = tx_.end_pos();
  return true;
}

bool LinkCore::enqueue_rt(std::span<const std::uint8_t> pkt, std::uint64_t rseq, Clock::time_point now) {
  (void)now;
  if (connected_ && tx_.unsent_bytes() > cfg_.send_queue_bytes) {
    ++c_.drop_queue_full;  // a realtime queue never grows long: what would wait is already late
    return false;
  }
  std::uint8_t* frame = tx_.prepare(realtime::kRtDataHeaderSize + pkt.size());
  if (!frame) {
    ++c_.drop_queue_full;
    return false;
  }
  realtime::encode_rt_data_header(frame, rseq, pkt.size());
  frame[0] = version_;
  std::memcpy(frame + realtime::kRtDataHeaderSize, pkt.data(), pkt.size());
  tx_.commit(realtime::kRtDataHeaderSize + pkt.size(), rseq, to_ms(now));
  ++c_.tx_packets;
  ++c_.tx_frames;
  c_.tx_bytes += pkt.size();
  return true;
}

// ---------------------------------------------------------------- queued frames

namespace {
// A whole frame's size from its common header at `h` (kHeaderSize bytes).
std::size_t frame_size(const std::uint8_t* h) {
  return wire::kHeaderSize + (std::size_t{h[4]} << 24 | std::size_t{h[5]} << 16 | std::size_t{h[6]} << 8 | h[7]);
}
}  // namespace

std::size_t LinkCore::xq_frame_at(std::size_t off) const {
  return std::min(frame_size(xq_.data() + off), xq_.size() - off);
}

bool LinkCore::realtime_waits() const {
  const std::uint64_t pos = tx_.sent_pos();
  return rt_end_ > pos && rt_end_ - pos <= cfg_.send_queue_bytes;
}

std::size_t LinkCore::queued_turn() {
  if (xq_off_ == xq_.size() || !tx_.at_frame_boundary()) return 0;
  if (xq_next_ > xq_off_) return xq_next_ - xq_off_;  // the rest of a frame begun
  if (!realtime_waits()) {
    gate_set_ = false;
    return xq_.size() - xq_off_;
  }
  if (xq_urgent_ > xq_off_) return xq_urgent_ - xq_off_;  // ACK, HEARTBEAT, CLOSE: never behind realtime
  if (!gate_set_) {
    gate_ = rt_end_;
    gate_set_ = true;
  }
  if (tx_.sent_pos() < gate_ && !tx_.unsent().empty()) return 0;
  return xq_frame_at(xq_off_);
}

std::size_t LinkCore::data_before_queued(bool after_turn) const {
  if (!tx_.at_frame_boundary()) return tx_.to_boundary();
  const std::uint64_t pos = tx_.sent_pos();
  if (!after_turn) return gate_ > pos ? static_cast<std::size_t>(gate_ - pos) : 0;
  return realtime_waits() ? static_cast<std::size_t>(rt_end_ - pos) : 0;
}

void LinkCore::xq_consumed(std::size_t n) {
  if (n == 0) return;
  xq_off_ += n;
  while (xq_next_ < xq_off_) xq_next_ += xq_frame_at(xq_next_);
  // A frame from above went whole: the next waits for realtime queued since.
  if (xq_next_ == xq_off_ && xq_off_ > xq_urgent_) gate_set_ = false;
  if (xq_off_ == xq_.size()) {
    xq_.clear();
    xq_off_ = xq_next_ = xq_urgent_ = 0;
  }
}

// ---------------------------------------------------------------- output

void LinkCore::stage() {
  while (guard_->staged_bytes() < FrameGuard::kStageBytes && !seal_failed_) {
    std::span<const std::uint8_t> f;
    const bool from_xq = queued_turn() > 0;
    if (from_xq) {
      f = {xq_.data() + xq_off_, xq_frame_at(xq_off_)};  // whole frames only: sealed one by one
    } else if (!tx_.unsent().empty()) {
      f = tx_.unsent().first(tx_.to_boundary());
    } else {
      break;
    }
    if (guard_->add(f) != seal::Status::ok) {
      seal_failed_ = true;  // reported by tick()
      break;
    }
    if (from_xq) {
      xq_consumed(f.size());
      continue;
    }
    const bool had_unacked = tx_.unacked_sent_frames() > 0;
    tx_.sent(f.size());
    if (cfg_.realtime) tx_.ack(UINT64_MAX);
    if (!had_unacked && tx_.unacked_sent_frames() > 0) staged_unacked_ = true;
  }
}

int LinkCore::output(iovec (&iov)[2]) {
  out_xq_ = 0;
  if (!connected_) return 0;
  if (guard_) {
    if (!guard_->staged()) stage();
    if (!guard_->staged()) return 0;
    const auto p = guard_->pending();
    iov[0] = {const_cast<std::uint8_t*>(p.data()), p.size()};
    return 1;
  }
  int n = 0;
  const std::size_t turn = queued_turn();
  if (turn) {
    out_xq_ = turn;
    iov[n++] = {xq_.data() + xq_off_, turn};
  }
  const auto d = tx_.unsent();
  std::size_t len = d.size();
  if (xq_off_ + turn < xq_.size()) len = std::min(len, data_before_queued(turn > 0));  // more frames wait
  if (len) iov[n++] = {const_cast<std::uint8_t*>(d.data()), len};
  return n;
}

void LinkCore::sent(std::size_t n, Clock::time_point now) {
  if (guard_) {
    guard_->consumed(n);
    if (staged_unacked_) live_.on_unacked(now);
    staged_unacked_ = false;
    return;
  }
  const bool had_unacked = tx_.unacked_sent_frames() > 0;
  const std::size_t c = std::min(n, out_xq_);
  xq_consumed(c);
  n -= c;
  out_xq_ = 0;
  if (n) tx_.sent(n);
  if (cfg_.realtime) tx_.ack(UINT64_MAX);  // released once sent: no replay on a realtime link
  if (!had_unacked && tx_.unacked_sent_frames() > 0) live_.on_unacked(now);
}

void LinkCore::blocked(Clock::time_point now) {
  if (!blocked_) blocked_since_ = now;
  blocked_ = true;
}

bool LinkCore::queue_control(const std::uint8_t* p, std::size_t n, bool urgent) {
  if (!connected_ || xq_.size() - xq_off_ + n > kMaxQueued) {
    ++c_.drop_control;
    return false;
  }
  if (xq_off_ > 0 && xq_off_ == xq_.size()) {
    xq_.clear();
    xq_off_ = xq_next_ = xq_urgent_ = 0;
  }
  // Urgent frames go behind the frame begun and the urgent ones before them.
  const std::size_t at = urgent ? std::max({xq_off_, xq_next_, xq_urgent_}) : xq_.size();
  xq_.insert(xq_.begin() + static_cast<std::ptrdiff_t>(at), p, p + n);
  xq_[at] = version_;
  if (urgent) xq_urgent_ = at + n;
  return true;
}

bool LinkCore::queue_frame(std::span<const std::uint8_t> frame) {
  // Whole frames only: the queue is walked frame by frame by their headers.
  if (frame.size() < wire::kHeaderSize || frame_size(frame.data()) != frame.size()) return false;
  return queue_control(frame.data(), frame.size(), false);
}

void LinkCore::queue_ack() {
  std::uint8_t b[wire::kHeaderSize + wire::kDsnSize];
  queue_control(b, wire::encode_ack(b, rx_last_, version_), true);
  acked_sent_ = rx_last_;
  rx_unacked_bytes_ = 0;
  ++c_.acks_sent;
}

void LinkCore::queue_close() {
  std::uint8_t b[wire::kHeaderSize];
  queue_control(b, wire::encode_empty(b, wire::FrameType::close, version_), true);
}

}  // namespace tunnel
