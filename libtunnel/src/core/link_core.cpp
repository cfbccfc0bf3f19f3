// See link_core.hpp for how a link sends, receives and resumes.
#include <tunnel/link_core.hpp>
#include <tunnel/realtime_wire.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {

LinkCounters& LinkCounters::operator+=(const LinkCounters& o) {
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  tx_frames += o.tx_frames;
  tx_compressed += o.tx_compressed;
  drop_queue_full += o.drop_queue_full;
  drop_codel += o.drop_codel;
  replayed += o.replayed;
  peak_buffered = std::max(peak_buffered, o.peak_buffered);
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  rx_duplicates += o.rx_duplicates;
  rx_rt_copies += o.rx_rt_copies;
  rx_missing += o.rx_missing;
  drop_spoofed += o.drop_spoofed;
  acks_sent += o.acks_sent;
  acks_received += o.acks_received;
  heartbeats_sent += o.heartbeats_sent;
  heartbeats_received += o.heartbeats_received;
  drop_control += o.drop_control;
  connections += o.connections;
  resumes += o.resumes;
  send_calls += o.send_calls;
  rx_forged += o.rx_forged;
  for (std::size_t i = 0; i < proto_errors.size(); ++i) proto_errors[i] += o.proto_errors[i];
  return *this;
}

LinkConfig realtime_link_config(const LinkConfig& bulk) {
  LinkConfig c = bulk;
  c.realtime = true;
  c.send_queue_bytes = 16 * 1024;
  c.recv_buffer_bytes = 64 * 1024;
  c.buffer_bytes = 256 * 1024;
  c.buffer_age = std::chrono::milliseconds(150);
  c.batch_bytes = 0;
  c.compress = false;
  return c;
}

LinkCore::LinkCore(const LinkConfig& cfg, Clock::time_point now)
    : cfg_(cfg),
      live_(cfg.heartbeat, cfg.dead_interval, cfg.hold, now),
      tx_(std::max(cfg.buffer_bytes, 4 * (wire::kDataHeaderSize + cfg.mtu))),
      queue_(cfg.send_queue_bytes),
      writer_(cfg.compress),
      now_ms_(to_ms(now)),
      busy_at_(now) {}

// ---------------------------------------------------------------- life

void LinkCore::attach(std::uint64_t peer_rx, std::uint8_t version, std::span<const std::uint8_t> early,
                      Clock::time_point now, std::optional<seal::LinkCrypto> crypto) {
  connected_ = true;
  guard_.reset();
  if (crypto) guard_.emplace(std::move(*crypto));
  seal_failed_ = staged_unacked_ = false;
  blocked_ = false;
  version_ = version;
  limits_.min_version = limits_.max_version = version;
  writer_.set_version(version);
  if (c_.connections++ > 0) ++c_.resumes;
  tx_.resume_from(cfg_.realtime ? 0 : peer_rx);
  tx_.stamp_version(version);
  c_.replayed += tx_.unsent_packets();
  queue_.exempt_all(tx_);  // the replay may exceed the send queue; new packets still get theirs
  xq_.clear();
  xq_off_ = out_xq_ = xq_next_ = 0;
  rt_end_ = 0;  // a replay is not realtime: the frames queued now need not wait for it
  gate_set_ = false;
  rlen_ = 0;
  if (rb_cap_ < std::max(early.size(), kRxFloor)) rx_reserve(std::max(early.size(), kRxFloor));
  const std::size_t n = std::min(early.size(), rb_cap_);
  if (n) std::memcpy(rb_.get(), early.data(), n);
  rlen_ = n;
  roff_ = 0;
  in_data_ = false;
  acked_sent_ = rx_last_;
  live_.connected(now);
  codel_.reset();
}

void LinkCore::detach(Clock::time_point now) {
  if (!connected_) return;
  connected_ = false;
  blocked_ = false;
  guard_.reset();  // staged frames are still in the replay buffer (restart below)
  xq_.clear();
  xq_off_ = out_xq_ = xq_next_ = 0;
  gate_set_ = false;
  rlen_ = roff_ = 0;
  in_data_ = false;
  live_.disconnected(now);
  tx_.restart();
}

void LinkCore::reset(Clock::time_point now) {
  detach(now);
  tx_.clear();
  rx_last_ = acked_sent_ = 0;
  rx_started_ = false;
  live_.restart_hold(now);
}

// ---------------------------------------------------------------- send

// ---------------------------------------------------------------- receive

std::span<std::uint8_t> LinkCore::rx_space() {
  // Grows (doubling) when the last read filled the buffer or a partial frame
  // fills it: rare, never per packet.
  if (rb_cap_ == 0) rx_reserve(kRxFloor);
  else if ((rx_filled_ || rlen_ == rb_cap_) && rb_cap_ < rx_max()) rx_reserve(2 * rb_cap_);
  rx_filled_ = false;
  return {rb_.get() + rlen_, rb_cap_ - rlen_};
}

void LinkCore::received(std::size_t n, Clock::time_point now) {
  rlen_ += std::min(n, rb_cap_ - rlen_);
  rx_filled_ = rlen_ == rb_cap_;
  live_.on_rx(now);
}

LinkCore::RxEvent LinkCore::next(Clock::time_point now) {
  const auto ev = [](RxKind k) {
    RxEvent e;
    e.kind = k;
    return e;
  };
  for (;;) {
    if (in_data_) {
      const auto pkt = reader_.next();
      if (!pkt.empty()) {
        const std::uint64_t dsn = data_dsn_++;
        if (rx_started_ && dsn <= rx_last_) {
          ++c_.rx_duplicates;
          return ev(RxKind::skipped);
        }
        if (rx_started_ && dsn > rx_last_ + 1) c_.rx_missing += dsn - rx_last_ - 1;
        rx_started_ = true;
        rx_last_ = dsn;
        ++c_.rx_packets;
        c_.rx_bytes += pkt.size();
        rx_unacked_bytes_ += pkt.size();
        RxEvent e = ev(RxKind::packet);
        e.packet = pkt;
        return e;
      }
      in_data_ = false;
    }
    std::span<const std::uint8_t> in{rb_.get() + roff_, rlen_ - roff_};
    std::size_t wire_len = 0;  // a sealed frame's size on the wire
    if (guard_) {
      const FrameGuard::Opened o = guard_->open({rb_.get() + roff_, rlen_ - roff_}, limits_.max_body);
      if (o.need_more) return {};
      if (o.status != seal::Status::ok) {
        ++c_.rx_forged;
        RxEvent e = ev(RxKind::fault);
        e.fault = Fault::forged_frame;
        return e;
      }
      in = in.first(o.plain);
      wire_len = o.sealed;
    }
    wire::ParseResult pr = wire::parse_frame(in, limits_);
    if (pr.status == wire::ParseStatus::need_more) {
      if (!guard_) return {};
      pr.status = wire::ParseStatus::bad_length;  // an opened frame is whole
    }
    if (pr.status != wire::ParseStatus::ok) {
      ++c_.proto_errors[static_cast<std::size_t>(pr.status)];
      RxEvent e = ev(RxKind::fault);
      e.fault = Fault::malformed_frame;
      e.parse = pr.status;
      return e;
    }
    roff_ += guard_ ? wire_len : pr.consumed;
    const wire::Frame& f = pr.frame;
    switch (f.type) {
      case wire::FrameType::data:
        reader_.start(f.body);
        data_dsn_ = f.dsn;
        in_data_ = true;
        continue;
      case wire::FrameType::ack: {
        ++c_.acks_received;
        const std::size_t before = tx_.unacked_sent_frames();
        tx_.ack(f.dsn);
        if (tx_.unacked_sent_frames() != before) live_.on_ack(now, tx_.unacked_sent_frames() > 0);
        continue;
      }
      case wire::FrameType::heartbeat:
        ++c_.heartbeats_received;
        continue;
      case wire::FrameType::close:
        return ev(RxKind::closed);
      case wire::FrameType::error:
        {
          RxEvent e = ev(RxKind::error);
          e.text = {reinterpret_cast<const char*>(f.body.data()), f.body.size()};
          return e;
        }
      case wire::FrameType::message:
      case wire::FrameType::result:
      case wire::FrameType::receipt:
      case wire::FrameType::rt_data:
      case wire::FrameType::probe: {
        RxEvent e = ev(RxKind::frame);
        e.frame = f;
        return e;
      }
      default:
        {
          RxEvent e = ev(RxKind::fault);
          e.fault = Fault::unexpected_frame;
          return e;
        }
    }
  }
}

bool LinkCore::rx_done() {
  if (roff_ > 0) {
    std::memmove(rb_.get(), rb_.get() + roff_, rlen_ - roff_);
    rlen_ -= roff_;
    roff_ = 0;
  }
  if (connected_ && rx_unacked_bytes_ >= cfg_.ack_bytes) {
    queue_ack();
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- timers

Fault LinkCore::tick(Clock::time_point now) {
  now_ms_ = to_ms(now);
  Fault f = Fault::none;
  if (connected_ && seal_failed_) return Fault::seal_failed;
  if (connected_) {
    f = live_.dead(now);
    if (f == Fault::none) {
      if (rx_last_ != acked_sent_) queue_ack();
      if (live_.heartbeat_due(now)) {
        std::uint8_t b[wire::kHeaderSize];
        queue_control(b, wire::encode_empty(b, wire::FrameType::heartbeat, version_), true);
        ++c_.heartbeats_sent;
        live_.heartbeat_sent(now);
      }
    }
  }
  tx_.expire(now_ms_, cfg_.buffer_age.count());
  if (c_.tx_packets != quiet_tx_ || c_.rx_packets + c_.rx_duplicates != quiet_rx_) {
    quiet_tx_ = c_.tx_packets;
    quiet_rx_ = c_.rx_packets + c_.rx_duplicates;
    busy_at_ = now;
  } else if (now - busy_at_ >= kTrimAfter) {
    trim_now();
  }
  return f;
}

}  // namespace tunnel
