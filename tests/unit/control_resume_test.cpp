// The control channel across losses: resend after resume, exactly-once
// under duplicates, protocol errors, result timeouts and session end, under
// a fake clock (control_pair.hpp wires two channels back to back).
#include "control_pair.hpp"

#include <random>

namespace {
using namespace control_test;

TEST(ControlChannel, UnacknowledgedItemsAreResentAfterResume) {
  Pair p;
  p.send(1);
  p.send(2);
  p.send(3);
  // The frames leave the gateway and are lost with the connection.
  EXPECT_EQ(take(p.gw).size(), 3u);
  p.reconnect();
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(p.gw.counters().resent, 3u);
  EXPECT_EQ(p.gw.counters().sent, 3u);
  EXPECT_EQ(run_all(p.cpe, p.now), (std::vector<std::uint64_t>{1, 2, 3}));
  // The results are lost the same way, then resent.
  EXPECT_EQ(take(p.cpe).size(), 3u);
  p.reconnect();
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(p.cpe.counters().resent, 3u);
  EXPECT_EQ(completions(p.gw).size(), 3u);
  EXPECT_EQ(p.gw.outbox_items() + p.cpe.outbox_items(), 0u);
}

TEST(ControlChannel, MessagesSentWhileDisconnectedGoOutOnResume) {
  Pair p;
  p.gw.detached(p.now);
  p.cpe.detached(p.now);
  p.send(7);
  p.now += 20s;
  p.gw.attached(p.now);
  p.cpe.attached(p.now);
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(run_all(p.cpe, p.now), (std::vector<std::uint64_t>{7}));
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(completions(p.gw).size(), 1u);
}

TEST(ControlChannel, DuplicatesAreAcknowledgedAgainAndNotRunAgain) {
  Pair p;
  p.send(1);
  p.send(2);
  const auto frames = take(p.gw);
  deliver(p.cpe, frames, p.now);
  take(p.cpe);         // the receipt is lost
  deliver(p.cpe, frames, p.now);  // both arrive again
  EXPECT_EQ(p.cpe.counters().duplicates, 2u);
  EXPECT_EQ(p.cpe.counters().received, 2u);
  EXPECT_EQ(p.cpe.queued(), 2u);
  const auto again = take(p.cpe);
  ASSERT_EQ(again.size(), 1u);  // a receipt again, covering both
  EXPECT_EQ(again[0].type, kReceiptType);
  deliver(p.gw, again, p.now);
  EXPECT_EQ(p.gw.counters().acknowledged, 2u);
  EXPECT_EQ(p.gw.outbox_items(), 0u);
  EXPECT_EQ(run_all(p.cpe, p.now), (std::vector<std::uint64_t>{1, 2}));
}

TEST(ControlChannel, DuplicateResultsCompleteOnce) {
  Pair p;
  p.send(1);
  pump(p.gw, p.cpe, p.now);
  run_all(p.cpe, p.now);
  const auto results = take(p.cpe);
  deliver(p.gw, results, p.now);
  deliver(p.gw, results, p.now);
  EXPECT_EQ(completions(p.gw).size(), 1u);
  EXPECT_EQ(p.gw.counters().answered, 1u);
  EXPECT_EQ(p.gw.counters().results_unknown, 0u);
}

TEST(ControlChannel, SameMsgIdUnderANewSequenceIsNotRunAgain) {
  ControlChannel cpe(Pair::handler_cfg());
  const Clock::time_point now{};
  cpe.attached(now);
  Bytes f1, f2;
  ASSERT_EQ(encode_message(f1, MessageView{99, 1, "t", {}}), BodyError::ok);
  ASSERT_EQ(encode_message(f2, MessageView{99, 2, "t", {}}), BodyError::ok);
  const std::span<const std::uint8_t> b1(f1), b2(f2);
  ASSERT_TRUE(cpe.on_frame(kMessageType, b1.subspan(8), now).ok());
  ASSERT_TRUE(cpe.on_frame(kMessageType, b2.subspan(8), now).ok());
  EXPECT_EQ(cpe.queued(), 1u);
  EXPECT_EQ(cpe.counters().duplicates, 1u);
}

TEST(ControlChannel, ResultForUnknownIdIsCountedAndDropped) {
  ControlChannel gw;
  const Clock::time_point now{};
  gw.attached(now);
  Bytes f;
  ASSERT_EQ(encode_result(f, ResultView{1234, 1, Status::done, false, 0, {}}), BodyError::ok);
  ASSERT_TRUE(gw.on_frame(kResultType, std::span<const std::uint8_t>(f).subspan(8), now).ok());
  EXPECT_EQ(gw.counters().results_unknown, 1u);
  Completion c;
  EXPECT_FALSE(gw.pop_completion(c));
  const auto r = take(gw);  // still acknowledged, so the peer stops resending it
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kReceiptType);
}

TEST(ControlChannel, MalformedFramesAreProtocolErrors) {
  ControlChannel ch(Pair::handler_cfg());
  const Clock::time_point now{};
  ch.attached(now);
  const Bytes junk(30, 0xff);
  auto r = ch.on_frame(kMessageType, junk, now);
  EXPECT_EQ(r.error, ChannelError::bad_body);
  EXPECT_EQ(r.body, BodyError::bad_topic);
  r = ch.on_frame(kResultType, Bytes(5, 1), now);
  EXPECT_EQ(r.body, BodyError::bad_length);
  r = ch.on_frame(kReceiptType, Bytes(8, 0), now);
  EXPECT_EQ(r.body, BodyError::bad_id);
  r = ch.on_frame(5, Bytes{}, now);
  EXPECT_EQ(r.body, BodyError::bad_type);
  // A gap in the peer's sequence.
  Bytes f;
  ASSERT_EQ(encode_message(f, MessageView{1, 2, "t", {}}), BodyError::ok);
  r = ch.on_frame(kMessageType, std::span<const std::uint8_t>(f).subspan(8), now);
  EXPECT_EQ(r.error, ChannelError::sequence_gap);
  // A receipt for an item never handed out.
  Bytes rc;
  encode_receipt(rc, 1);
  r = ch.on_frame(kReceiptType, std::span<const std::uint8_t>(rc).subspan(8), now);
  EXPECT_EQ(r.error, ChannelError::receipt_ahead);
  EXPECT_EQ(ch.counters().protocol_errors, 6u);
  EXPECT_EQ(ch.queued(), 0u);
}

TEST(ControlChannel, ResultTimeoutCompletesWithTimeout) {
  ChannelConfig gcfg;
  gcfg.result_timeout = 5s;
  Pair p(Pair::handler_cfg(), gcfg);
  p.send(1);
  EXPECT_EQ(p.gw.next_deadline(), p.now + 5s);
  pump(p.gw, p.cpe, p.now);
  p.now += 4s;
  p.send(2);
  p.gw.on_timer(p.now);
  EXPECT_TRUE(completions(p.gw).empty());
  p.now += 2s;  // 6 s after the first, 2 s after the second
  p.gw.on_timer(p.now);
  auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].msg_id, 1u);
  EXPECT_EQ(c[0].status, Status::timeout);
  EXPECT_EQ(p.gw.next_deadline(), Clock::time_point{} + 9s);
  EXPECT_EQ(p.gw.counters().timed_out, 1u);
  // The late result is an unknown id now; the second is still answered.
  pump(p.gw, p.cpe, p.now);
  run_all(p.cpe, p.now);
  pump(p.gw, p.cpe, p.now);
  c = completions(p.gw);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].msg_id, 2u);
  EXPECT_EQ(p.gw.counters().results_unknown, 1u);
}

TEST(ControlChannel, NoResultTimeoutWhenDisabled) {
  ChannelConfig cfg;
  cfg.result_timeout = 0ms;
  ControlChannel gw(cfg);
  const Clock::time_point now{};
  ASSERT_EQ(gw.send(1, "t", {}, now), SendError::ok);
  EXPECT_FALSE(gw.next_deadline());
  gw.on_timer(now + 1000h);
  EXPECT_EQ(gw.pending(), 1u);
}

TEST(ControlChannel, SessionEndEndsEverythingUnfinished) {
  Pair p;
  p.send(1);
  p.send(2);
  p.send(3);
  pump(p.gw, p.cpe, p.now);
  auto t = p.cpe.next_task();
  ASSERT_TRUE(t);
  ASSERT_TRUE(p.cpe.task_finished(t->msg_id, Status::done, 0, false, {}, p.now));
  pump(p.gw, p.cpe, p.now);
  EXPECT_EQ(completions(p.gw).size(), 1u);
  ASSERT_TRUE(p.cpe.next_task());  // 2 runs, 3 waits

  EXPECT_FALSE(p.gw.end_session(p.now).has_value());
  const auto c = completions(p.gw);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].msg_id, 2u);
  EXPECT_EQ(c[1].msg_id, 3u);
  for (const auto& x : c) EXPECT_EQ(x.status, Status::session_ended);
  EXPECT_EQ(p.gw.counters().ended, 2u);
  EXPECT_EQ(p.gw.send(4, "t", {}, p.now), SendError::ended);

  const auto running = p.cpe.end_session(p.now);
  ASSERT_TRUE(running);
  EXPECT_EQ(*running, 2u);  // the caller stops this handler
  EXPECT_FALSE(p.cpe.task_finished(2, Status::done, 0, false, {}, p.now));
  EXPECT_FALSE(p.cpe.next_task());
  EXPECT_EQ(p.cpe.counters().dropped_at_end, 2u);
  EXPECT_EQ(p.cpe.memory_bytes(), 0u);
  Bytes out;
  EXPECT_FALSE(p.cpe.pop_frame(out));
}

// Random losses of everything in flight, duplicated deliveries and handler
// runs interleaved: every message completes exactly once, runs exactly once,
// in sending order.
TEST(ControlChannel, ExactlyOnceInOrderUnderRandomLossAndDuplicates) {
  std::uint64_t resent = 0, duplicates = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Pair p;
    std::uint64_t next_id = 1;
    std::vector<std::uint64_t> ran;
    std::vector<Frame> last_to_cpe;
    std::size_t done = 0;
    for (int step = 0; step < 400; ++step) {
      p.now += 10ms;
      const int what = static_cast<int>(rng() % 10);
      if (what < 3 && next_id <= 100) {
        p.send(next_id++);
      } else if (what == 3) {
        p.reconnect();  // drops nothing by itself: frames already taken were lost
        take(p.gw);     // and what would have gone out on the old link is lost too
        take(p.cpe);
        p.reconnect();
      } else if (what == 4) {
        deliver(p.cpe, last_to_cpe, p.now);  // an old copy arrives again
      } else if (what < 8) {
        last_to_cpe = take(p.gw);
        deliver(p.cpe, last_to_cpe, p.now);
        deliver(p.gw, take(p.cpe), p.now);
      } else if (auto t = p.cpe.next_task()) {
        ran.push_back(t->msg_id);
        ASSERT_TRUE(p.cpe.task_finished(t->msg_id, Status::done, 0, false, {}, p.now));
      }
      done += completions(p.gw).size();
    }
    // Settle: no more losses.
    while (next_id <= 100) p.send(next_id++);
    for (int i = 0; i < 300 && done < 100; ++i) {
      pump(p.gw, p.cpe, p.now);
      if (auto t = p.cpe.next_task()) {
        ran.push_back(t->msg_id);
        ASSERT_TRUE(p.cpe.task_finished(t->msg_id, Status::done, 0, false, {}, p.now));
      }
      pump(p.gw, p.cpe, p.now);
      done += completions(p.gw).size();
    }
    ASSERT_EQ(done, 100u) << "seed " << seed;
    ASSERT_EQ(ran.size(), 100u) << "seed " << seed;
    for (std::size_t i = 0; i < ran.size(); ++i) ASSERT_EQ(ran[i], i + 1) << "seed " << seed;
    EXPECT_EQ(p.gw.pending(), 0u);
    EXPECT_EQ(p.gw.outbox_items(), 0u);
    EXPECT_EQ(p.cpe.outbox_items(), 0u);
    resent += p.gw.counters().resent + p.cpe.counters().resent;
    duplicates += p.cpe.counters().duplicates + p.gw.counters().duplicates;
  }
  EXPECT_GT(resent, 100u);  // the losses and duplicates did happen
  EXPECT_GT(duplicates, 100u);
}

}  // namespace
