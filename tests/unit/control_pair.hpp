// Test helpers for the control channel: two channels back to back through
// an in-memory link that can lose what is in flight, under a fake clock.
#pragma once

#include <tunnel/control_channel.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace control_test {
using namespace tunnel::control;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

inline Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }
inline std::string text_of(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

struct Frame {
  std::uint8_t type;
  Bytes body;
};

// Every frame `ch` wants to send now, split at the common header.
inline std::vector<Frame> take(ControlChannel& ch) {
  std::vector<Frame> out;
  Bytes buf;
  while (ch.pop_frame(buf)) {
  }
  for (std::size_t off = 0; off < buf.size();) {
    EXPECT_GE(buf.size() - off, tunnel::wire::kHeaderSize);
    const std::size_t len = (std::size_t{buf[off + 4]} << 24) | (std::size_t{buf[off + 5]} << 16) |
                            (std::size_t{buf[off + 6]} << 8) | buf[off + 7];
    const auto b = buf.begin() + static_cast<std::ptrdiff_t>(off + tunnel::wire::kHeaderSize);
    out.push_back(Frame{buf[off + 1], Bytes(b, b + static_cast<std::ptrdiff_t>(len))});
    off += tunnel::wire::kHeaderSize + len;
  }
  return out;
}

inline void deliver(ControlChannel& to, const std::vector<Frame>& frames, Clock::time_point now) {
  for (const Frame& f : frames) ASSERT_TRUE(to.on_frame(f.type, f.body, now).ok());
}

// Moves frames both ways until neither side has anything to send.
inline void pump(ControlChannel& a, ControlChannel& b, Clock::time_point now) {
  for (int i = 0; i < 100; ++i) {
    auto ab = take(a), ba = take(b);
    if (ab.empty() && ba.empty()) return;
    deliver(b, ab, now);
    deliver(a, ba, now);
  }
  FAIL() << "pump did not settle";
}

inline std::vector<Completion> completions(ControlChannel& ch) {
  std::vector<Completion> v;
  Completion c;
  while (ch.pop_completion(c)) v.push_back(c);
  return v;
}

// Runs every queued task to the end with output "ran:<topic>:<body>".
inline std::vector<std::uint64_t> run_all(ControlChannel& ch, Clock::time_point now) {
  std::vector<std::uint64_t> ran;
  while (auto t = ch.next_task()) {
    EXPECT_FALSE(ch.next_task().has_value());  // one at a time
    ran.push_back(t->msg_id);
    const Bytes out = bytes_of("ran:" + t->topic + ":" + text_of(t->body));
    EXPECT_TRUE(ch.task_finished(t->msg_id, Status::done, 0, false, out, now));
  }
  return ran;
}

struct Pair {
  Clock::time_point now{};
  ControlChannel gw, cpe;
  explicit Pair(ChannelConfig cpe_cfg = handler_cfg(), ChannelConfig gw_cfg = {}) : gw(gw_cfg), cpe(cpe_cfg) {
    gw.attached(now);
    cpe.attached(now);
  }
  static ChannelConfig handler_cfg() {
    ChannelConfig c;
    c.has_handler = true;
    return c;
  }
  void send(std::uint64_t id, std::string_view topic = "cmd", std::string_view body = "b") {
    ASSERT_EQ(gw.send(id, topic, bytes_of(body), now), SendError::ok);
  }
  void reconnect() {
    gw.detached(now);
    cpe.detached(now);
    gw.attached(now);
    cpe.attached(now);
  }
};

}  // namespace control_test
