// The control channel's pure state machine: built-in topics, refusals,
// order, the queue limit, validation and both directions (control_pair.hpp
// wires two channels back to back).
#include "control_pair.hpp"

namespace {
using namespace control_test;

TEST(ControlChannel, PingIsAnsweredPongAtOnce) {
  Pair p(ChannelConfig{});  // no handler program
  p.send(42, "tunneld.ping", "");
  pump(p.gw, p.cpe, p.now);
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].msg_id, 42u);
  EXPECT_EQ(c[0].status, Status::done);
  EXPECT_EQ(c[0].exit_code, 0);
  EXPECT_EQ(text_of(c[0].body), "pong");
  EXPECT_EQ(p.gw.counters().sent, 1u);
  EXPECT_EQ(p.gw.counters().acknowledged, 1u);
  EXPECT_EQ(p.gw.counters().answered, 1u);
  EXPECT_EQ(p.gw.pending(), 0u);
  EXPECT_EQ(p.cpe.counters().received, 1u);
  // Receipts released both outboxes.
  EXPECT_EQ(p.gw.outbox_items(), 0u);
  EXPECT_EQ(p.cpe.outbox_items(), 0u);
  EXPECT_EQ(p.gw.memory_bytes() + p.cpe.memory_bytes(), 0u);
}

TEST(ControlChannel, BuiltinsAreNotQueuedBehindAHandler) {
  ChannelConfig cfg = Pair::handler_cfg();
  cfg.queue_limit = 1;
  int asked = 0;
  ControlChannel gw, cpe(cfg, [&] {
    ++asked;
    return std::string(R"({"ok":true})");
  });
  const Clock::time_point now{};
  gw.attached(now);
  cpe.attached(now);
  ASSERT_EQ(gw.send(1, "slow", {}, now), SendError::ok);
  pump(gw, cpe, now);
  ASSERT_TRUE(cpe.next_task().has_value());  // 1 runs
  ASSERT_EQ(gw.send(2, "slow", {}, now), SendError::ok);
  pump(gw, cpe, now);  // 2 waits: the queue is full
  ASSERT_EQ(gw.send(3, "tunneld.status", {}, now), SendError::ok);
  ASSERT_EQ(gw.send(4, "tunneld.ping", {}, now), SendError::ok);
  pump(gw, cpe, now);
  const auto c = completions(gw);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].msg_id, 3u);
  EXPECT_EQ(text_of(c[0].body), R"({"ok":true})");
  EXPECT_EQ(c[1].msg_id, 4u);
  EXPECT_EQ(text_of(c[1].body), "pong");
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(cpe.queued(), 1u);
}

TEST(ControlChannel, UnknownTopicWithoutHandlerIsNoHandler) {
  Pair p(ChannelConfig{});
  p.send(1, "reboot");
  p.send(2, "tunneld.status");  // no provider given
  pump(p.gw, p.cpe, p.now);
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 2u);
  for (const auto& x : c) {
    EXPECT_EQ(x.status, Status::no_handler);
    EXPECT_EQ(x.exit_code, kNoExit);
  }
  EXPECT_EQ(p.cpe.counters().refused, 2u);
  EXPECT_FALSE(p.cpe.next_task().has_value());
}

TEST(ControlChannel, ReservedPrefixIsNotHandedToTheHandler) {
  Pair p;
  p.send(1, "tunneld.reboot");
  pump(p.gw, p.cpe, p.now);
  EXPECT_FALSE(p.cpe.next_task().has_value());
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].status, Status::no_handler);
}

TEST(ControlChannel, OwnerBuiltinsAnswerTheirTopicsOnly) {
  Pair p;  // with a handler program: tunneld.* still never reaches it
  std::vector<std::string> seen;
  p.cpe.set_builtin([&](std::string_view topic, std::span<const std::uint8_t> body) -> std::optional<BuiltinReply> {
    seen.push_back(std::string(topic) + "=" + std::string(body.begin(), body.end()));
    if (topic != "tunneld.downlink") return std::nullopt;
    return BuiltinReply{body.empty() ? Status::failed : Status::done, "shaped"};
  });
  p.send(1, "tunneld.downlink", "1 20000000\n");
  p.send(2, "tunneld.downlink", "");
  p.send(3, "tunneld.reboot", "");
  p.send(4, "tunneld.ping");  // answered before the owner is asked
  pump(p.gw, p.cpe, p.now);
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].status, Status::done);
  EXPECT_EQ(c[0].exit_code, 0);
  EXPECT_EQ(text_of(c[0].body), "shaped");
  EXPECT_EQ(c[1].status, Status::failed);
  EXPECT_EQ(c[1].exit_code, kNoExit);
  EXPECT_EQ(c[2].status, Status::no_handler);
  EXPECT_EQ(text_of(c[3].body), "pong");
  EXPECT_EQ((std::vector<std::string>{"tunneld.downlink=1 20000000\n", "tunneld.downlink=", "tunneld.reboot="}), seen);
  EXPECT_FALSE(p.cpe.next_task().has_value());
}

TEST(ControlChannel, TasksRunOneAtATimeInArrivalOrder) {
  Pair p;
  for (std::uint64_t id = 10; id < 15; ++id) p.send(id, "t" + std::to_string(id), "body" + std::to_string(id));
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(p.cpe.queued(), 5u);
  const auto ran = run_all(p.cpe, p.now);
  EXPECT_EQ(ran, (std::vector<std::uint64_t>{10, 11, 12, 13, 14}));
  pump(p.gw, p.cpe, p.now);
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 5u);
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].msg_id, 10 + i);
    EXPECT_EQ(c[i].status, Status::done);
    EXPECT_EQ(text_of(c[i].body), "ran:t" + std::to_string(10 + i) + ":body" + std::to_string(10 + i));
  }
  EXPECT_EQ(p.cpe.counters().results_sent, 5u);
}

TEST(ControlChannel, NextTaskWaitsForTheRunningOne) {
  Pair p;
  p.send(1);
  p.send(2);
  pump(p.gw, p.cpe, p.now);
  auto t = p.cpe.next_task();
  ASSERT_TRUE(t);
  EXPECT_TRUE(p.cpe.running());
  EXPECT_FALSE(p.cpe.next_task());
  EXPECT_FALSE(p.cpe.task_finished(2, Status::done, 0, false, {}, p.now));  // not the running one
  EXPECT_TRUE(p.cpe.task_finished(1, Status::failed, 137, false, {}, p.now));
  auto t2 = p.cpe.next_task();
  ASSERT_TRUE(t2);
  EXPECT_EQ(t2->msg_id, 2u);
}

TEST(ControlChannel, QueueLimitAnswersBusyAtOnce) {
  ChannelConfig cfg = Pair::handler_cfg();
  cfg.queue_limit = 3;
  Pair p(cfg);
  for (std::uint64_t id = 1; id <= 5; ++id) p.send(id);
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(p.cpe.queued(), 3u);
  auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].msg_id, 4u);
  EXPECT_EQ(c[0].status, Status::busy);
  EXPECT_EQ(c[1].msg_id, 5u);
  EXPECT_EQ(p.cpe.counters().refused, 2u);
  // The running task does not count against the limit.
  ASSERT_TRUE(p.cpe.next_task());
  p.send(6);
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(p.cpe.queued(), 3u);
  EXPECT_TRUE(completions(p.gw).empty());
}

TEST(ControlChannel, NothingIsSentWhileDetached) {
  ControlChannel gw;
  const Clock::time_point now{};
  ASSERT_EQ(gw.send(1, "t", {}, now), SendError::ok);  // queued before any connection
  Bytes out;
  EXPECT_FALSE(gw.wants_send());
  EXPECT_FALSE(gw.pop_frame(out));
  gw.attached(now);
  EXPECT_TRUE(gw.wants_send());
  EXPECT_TRUE(gw.pop_frame(out));
  gw.detached(now);
  EXPECT_FALSE(gw.pop_frame(out));
}

TEST(ControlChannel, SendIsValidated) {
  ChannelConfig cfg;
  cfg.max_outbox_bytes = 1000;
  ControlChannel gw(cfg);
  const Clock::time_point now{};
  EXPECT_EQ(gw.send(0, "t", {}, now), SendError::bad_id);
  EXPECT_EQ(gw.send(1, "bad topic", {}, now), SendError::bad_topic);
  EXPECT_EQ(gw.send(1, "t", Bytes(kMaxControlBody + 1, 0), now), SendError::too_large);
  EXPECT_EQ(gw.send(1, "t", Bytes(900, 0), now), SendError::ok);
  EXPECT_EQ(gw.send(1, "t", {}, now), SendError::duplicate_id);
  EXPECT_EQ(gw.send(2, "t", Bytes(200, 0), now), SendError::outbox_full);
  EXPECT_EQ(gw.pending(), 1u);
}

TEST(ControlChannel, OversizeHandlerOutputIsCutAndMarkedTruncated) {
  Pair p;
  p.send(1);
  pump(p.gw, p.cpe, p.now);
  auto t = p.cpe.next_task();
  ASSERT_TRUE(t);
  ASSERT_TRUE(p.cpe.task_finished(1, Status::done, 0, false, Bytes(kMaxControlBody + 100, 'x'), p.now));
  pump(p.gw, p.cpe, p.now);
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0].truncated);
  EXPECT_EQ(c[0].body.size(), kMaxControlBody);
}

TEST(ControlChannel, BothDirectionsAtOnce) {
  ChannelConfig h = Pair::handler_cfg();
  Pair p(h, h);
  p.send(1, "to-cpe");
  ASSERT_EQ(p.cpe.send(1, "to-gw", bytes_of("x"), p.now), SendError::ok);  // ids are per sender
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(run_all(p.gw, p.now), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(run_all(p.cpe, p.now), (std::vector<std::uint64_t>{1}));
  pump(p.gw, p.cpe, p.now);
  const auto a = completions(p.gw), b = completions(p.cpe);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(text_of(a[0].body), "ran:to-cpe:b");
  EXPECT_EQ(text_of(b[0].body), "ran:to-gw:x");
}

}  // namespace
