// Timing rules of a session, pure so they run under a fake clock in tests:
// when to send a heartbeat, when the peer counts as gone, when a session
// that lost its connection is given up.
//
// - Anything received (a heartbeat, data, an ACK) shows the peer is alive.
// - The peer is gone when nothing arrived for the dead interval, or when
//   frames we sent have waited that long for an acknowledgement while the
//   peer's ACKs stopped advancing. The second rule catches an MPTCP socket
//   that still takes writes while no subflow carries them.
// - A session without a connection is held for the hold time, then expires.
#pragma once

#include <tunnel/fault.hpp>

#include <chrono>
#include <optional>

namespace tunnel {

class Liveness {
 public:
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;

  // Starts without a connection, the hold time counting from `now`.
  Liveness(ms heartbeat, ms dead_interval, ms hold, Clock::time_point now = Clock::now())
      : hb_(heartbeat), dead_(dead_interval), hold_(hold), down_since_(now) {}

  // A connection is attached and the handshake is done.
  void connected(Clock::time_point now) {
    down_since_.reset();
    last_rx_ = last_hb_ = now;
    waiting_ack_since_.reset();
  }
  // The connection is gone; the hold time starts.
  void disconnected(Clock::time_point now) {
    if (!down_since_) down_since_ = now;
    waiting_ack_since_.reset();
  }
  bool is_connected() const { return !down_since_.has_value(); }
  // The session starts over (new or reset) without a connection: the hold
  // time counts from now.
  void restart_hold(Clock::time_point now) { down_since_ = now; waiting_ack_since_.reset(); }

  void on_rx(Clock::time_point now) { last_rx_ = now; }
  // Frames were sent while none was waiting for an ACK.
  void on_unacked(Clock::time_point now) {
    if (!waiting_ack_since_) waiting_ack_since_ = now;
  }
  // An ACK advanced; `still_unacked` says whether sent frames remain.
  void on_ack(Clock::time_point now, bool still_unacked) {
    if (still_unacked) waiting_ack_since_ = now;
    else waiting_ack_since_.reset();
  }

  // Sent data has waited longer than `d` for the peer's ACKs to advance.
  bool ack_stalled(Clock::time_point now, ms d) const {
    return is_connected() && waiting_ack_since_ && now - *waiting_ack_since_ > d;
  }

  bool heartbeat_due(Clock::time_point now) const { return is_connected() && now - last_hb_ >= hb_; }
  void heartbeat_sent(Clock::time_point now) { last_hb_ = now; }

  // Why the peer counts as gone (dead_silent, dead_unacked), or Fault::none.
  Fault dead(Clock::time_point now) const {
    if (!is_connected()) return Fault::none;
    if (now - last_rx_ > dead_) return Fault::dead_silent;
    if (waiting_ack_since_ && now - *waiting_ack_since_ > dead_) return Fault::dead_unacked;
    return Fault::none;
  }
  bool expired(Clock::time_point now) const { return down_since_ && now - *down_since_ > hold_; }

  Clock::time_point last_rx() const { return last_rx_; }
  std::optional<Clock::time_point> down_since() const { return down_since_; }
  ms heartbeat() const { return hb_; }
  ms dead_interval() const { return dead_; }
  ms hold() const { return hold_; }

 private:
  ms hb_, dead_, hold_;
  Clock::time_point last_rx_{}, last_hb_{};
  std::optional<Clock::time_point> waiting_ack_since_;
  std::optional<Clock::time_point> down_since_;
};

}  // namespace tunnel
