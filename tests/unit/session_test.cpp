// The session layer's pure parts: the replay buffer and the send queue's
// admission (liveness_test.cpp: the liveness timers).
#include <tunnel/replay_buffer.hpp>
#include <tunnel/send_queue.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace {
using namespace tunnel;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

// ------------------------------------------------------------ ReplayBuffer

// Appends a frame of `len` bytes whose content names its dsn.
bool put(ReplayBuffer& rb, std::uint64_t dsn, std::size_t len, std::int64_t t = 0) {
  std::uint8_t* p = rb.prepare(len);
  if (!p) return false;
  for (std::size_t i = 0; i < len; ++i) p[i] = static_cast<std::uint8_t>(dsn + i);
  rb.commit(len, dsn, t);
  return true;
}

// Sends everything unsent (in chunks of `chunk`) and returns the dsns of the
// frames it covered, checking their bytes.
std::vector<std::uint64_t> drain(ReplayBuffer& rb, std::size_t len, std::size_t chunk = 1 << 30) {
  Bytes out;
  while (!rb.unsent().empty()) {
    auto u = rb.unsent();
    const std::size_t n = std::min(chunk, u.size());
    out.insert(out.end(), u.begin(), u.begin() + static_cast<std::ptrdiff_t>(n));
    rb.sent(n);
  }
  std::vector<std::uint64_t> dsns;
  for (std::size_t off = 0; off + len <= out.size(); off += len) {
    const std::uint64_t d = out[off];
    for (std::size_t i = 0; i < len; ++i) EXPECT_EQ(out[off + i], static_cast<std::uint8_t>(d + i));
    dsns.push_back(d);
  }
  EXPECT_EQ(out.size() % len, 0u);
  return dsns;
}

TEST(ReplayBuffer, SendsInOrderAndReleasesOnAck) {
  ReplayBuffer rb(10000);
  for (std::uint64_t d = 1; d <= 10; ++d) ASSERT_TRUE(put(rb, d, 100));
  EXPECT_EQ(drain(rb, 100, 37), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(rb.unacked_sent_frames(), 10u);
  rb.ack(4);
  EXPECT_EQ(rb.frames(), 6u);
  EXPECT_EQ(rb.front_dsn(), 5u);
  rb.ack(3);  // an old ACK changes nothing
  EXPECT_EQ(rb.frames(), 6u);
  rb.ack(10);
  EXPECT_EQ(rb.frames(), 0u);
  EXPECT_EQ(rb.counters().acked, 10u);
}

TEST(ReplayBuffer, AckNeverReleasesUnsentFrames) {
  ReplayBuffer rb(10000);
  for (std::uint64_t d = 1; d <= 4; ++d) put(rb, d, 50);
  rb.sent(100);  // frames 1 and 2
  rb.ack(4);
  EXPECT_EQ(rb.frames(), 2u);
  EXPECT_EQ(rb.front_dsn(), 3u);
}

TEST(ReplayBuffer, ResumeReplaysWhatThePeerLacks) {
  ReplayBuffer rb(10000);
  for (std::uint64_t d = 1; d <= 8; ++d) put(rb, d, 64);
  rb.sent(5 * 64 + 10);  // 5 frames and part of the 6th, then the connection breaks
  rb.ack(2);
  rb.restart();
  for (std::uint64_t d = 9; d <= 10; ++d) put(rb, d, 64);  // queued while down
  rb.resume_from(4);  // the peer had 1..4
  EXPECT_EQ(drain(rb, 64), (std::vector<std::uint64_t>{5, 6, 7, 8, 9, 10}));
}

TEST(ReplayBuffer, BoundaryTracksPartialFrames) {
  ReplayBuffer rb(10000);
  put(rb, 1, 100);
  put(rb, 2, 100);
  EXPECT_TRUE(rb.at_frame_boundary());
  rb.sent(30);
  EXPECT_FALSE(rb.at_frame_boundary());
  EXPECT_EQ(rb.to_boundary(), 70u);
  rb.sent(70);
  EXPECT_TRUE(rb.at_frame_boundary());
}

TEST(ReplayBuffer, DropsOldestWhenFullAndCounts) {
  ReplayBuffer rb(1000);
  for (std::uint64_t d = 1; d <= 25; ++d) ASSERT_TRUE(put(rb, d, 100));
  EXPECT_LE(rb.bytes(), 1000u);
  EXPECT_EQ(rb.frames(), 10u);
  EXPECT_EQ(rb.front_dsn(), 16u);
  EXPECT_EQ(rb.counters().drop_full, 15u);
  EXPECT_EQ(rb.counters().drop_unsent, 15u);
  EXPECT_EQ(drain(rb, 100).front(), 16u);
}

TEST(ReplayBuffer, NeverDropsAPartlySentFrame) {
  ReplayBuffer rb(300);
  put(rb, 1, 100);
  put(rb, 2, 100);
  put(rb, 3, 100);
  rb.sent(50);
  EXPECT_EQ(rb.prepare(100), nullptr);  // would need to drop frame 1, half sent
  EXPECT_EQ(rb.frames(), 3u);
  rb.sent(50);
  EXPECT_NE(rb.prepare(100), nullptr);  // frame 1 is wholly sent now: it may go
  EXPECT_EQ(rb.counters().drop_full, 1u);
  EXPECT_EQ(rb.counters().drop_unsent, 0u);
}

TEST(ReplayBuffer, ExpiresByAge) {
  ReplayBuffer rb(100000);
  for (std::uint64_t d = 1; d <= 10; ++d) put(rb, d, 100, static_cast<std::int64_t>(d * 100));
  EXPECT_EQ(rb.expire(1000, 500), 4u);  // older than t=500: 1..4
  EXPECT_EQ(rb.front_dsn(), 5u);
  EXPECT_EQ(rb.counters().drop_age, 4u);
}

TEST(ReplayBuffer, StaysCorrectAcrossGrowthAndCompaction) {
  // Random frame sizes, sends, acks and reconnects against a model.
  std::mt19937 rng(7);
  ReplayBuffer rb(64 * 1024);
  std::uint64_t next = 1, acked = 0;
  std::vector<std::uint64_t> delivered;
  for (int round = 0; round < 3000; ++round) {
    const std::size_t len = 40 + rng() % 1500;
    // Frames carry their dsn in the first 8 bytes.
    std::uint8_t* p = rb.prepare(len);
    ASSERT_NE(p, nullptr);
    std::memcpy(p, &next, 8);
    std::memset(p + 8, static_cast<int>(next & 0xff), len - 8);
    rb.commit(len, next++, 0);
    if (rng() % 3 == 0) {
      // Send everything, parse frame starts from the known lengths via the model.
      auto u = rb.unsent();
      const std::size_t n = u.size();
      rb.sent(n);
    }
    if (rng() % 5 == 0 && rb.unacked_sent_frames()) {
      acked = rb.front_dsn() + rng() % rb.unacked_sent_frames();
      rb.ack(acked);
    }
    if (rng() % 50 == 0) {
      rb.restart();
      rb.resume_from(acked);
      ASSERT_TRUE(rb.frames() == 0 || rb.front_dsn() > acked) << round;
      auto u = rb.unsent();
      if (!u.empty()) {
        std::uint64_t d;
        std::memcpy(&d, u.data(), 8);
        // Replay starts with the first frame the peer lacks (or the oldest
        // kept, if the peer's next was dropped for room), content intact.
        ASSERT_GE(d, acked + 1);
        ASSERT_EQ(u[8], static_cast<std::uint8_t>(d & 0xff));
      }
    }
  }
  EXPECT_LE(rb.bytes(), 64u * 1024);
  EXPECT_LE(rb.capacity(), 2u * 64 * 1024);
}

// Adds `len` bytes to the last frame as one more packet numbered `dsn`.
bool extend(ReplayBuffer& rb, std::uint64_t dsn, std::size_t len) {
  const std::size_t at = rb.tail_len();
  std::uint8_t* f = rb.extend_tail(len);
  if (!f) return false;
  std::memset(f + at, static_cast<int>(dsn), len);
  rb.extend_commit(len, dsn);
  return true;
}

TEST(ReplayBuffer, TailGrowsOnlyWhileNoByteOfItWasSent) {
  ReplayBuffer rb(10000);
  EXPECT_FALSE(rb.tail_open());
  ASSERT_TRUE(put(rb, 1, 100));
  ASSERT_TRUE(rb.tail_open());
  ASSERT_TRUE(extend(rb, 2, 50));
  ASSERT_TRUE(extend(rb, 3, 50));
  EXPECT_EQ(rb.frames(), 1u);
  EXPECT_EQ(rb.packets(), 3u);
  EXPECT_EQ(rb.tail_len(), 200u);
  EXPECT_EQ(rb.last_dsn(), 3u);
  EXPECT_EQ(rb.unsent_packets(), 3u);
  rb.sent(1);
  EXPECT_FALSE(rb.tail_open());
  EXPECT_EQ(rb.extend_tail(10), nullptr);
  rb.sent(199);
  EXPECT_EQ(rb.unsent_packets(), 0u);
  EXPECT_EQ(rb.unacked_sent_frames(), 1u);
  // A connection lost before the ACK: the frame goes again, whole, and may
  // grow again meanwhile (it is resent as a whole anyway).
  rb.restart();
  EXPECT_TRUE(rb.tail_open());
  EXPECT_EQ(rb.unsent_packets(), 3u);
}

TEST(ReplayBuffer, AFrameOfSeveralPacketsIsReleasedWhenAllAreAcked) {
  ReplayBuffer rb(10000);
  put(rb, 1, 100);
  extend(rb, 2, 100);
  extend(rb, 3, 100);  // frame {1,2,3}
  put(rb, 4, 100);     // frame {4}
  rb.sent(rb.unsent().size());
  rb.ack(2);
  EXPECT_EQ(rb.frames(), 2u);  // 3 is not acknowledged: the frame stays
  EXPECT_EQ(rb.counters().acked, 0u);
  rb.ack(3);
  EXPECT_EQ(rb.frames(), 1u);
  EXPECT_EQ(rb.counters().acked, 3u);
  EXPECT_EQ(rb.packets(), 1u);
}

TEST(ReplayBuffer, ResumeResendsAPartlyDeliveredFrameWhole) {
  ReplayBuffer rb(10000);
  put(rb, 1, 100);
  extend(rb, 2, 100);  // frame {1,2}
  put(rb, 3, 100);
  extend(rb, 4, 100);  // frame {3,4}
  rb.sent(rb.unsent().size());
  rb.restart();
  rb.resume_from(3);  // the peer has 1..3: {1,2} goes, {3,4} is sent again
  EXPECT_EQ(rb.frames(), 1u);
  EXPECT_EQ(rb.front_dsn(), 4u);
  EXPECT_EQ(rb.unsent().size(), 200u);
  EXPECT_EQ(rb.unsent_packets(), 2u);
  EXPECT_EQ(rb.counters().acked, 2u);
}

TEST(ReplayBuffer, DropCountersCountPacketsNotFrames) {
  ReplayBuffer rb(1000);
  put(rb, 1, 100, 10);
  for (std::uint64_t d = 2; d <= 4; ++d) extend(rb, d, 100);  // {1..4}, 400 bytes, t=10
  put(rb, 5, 100, 20);
  extend(rb, 6, 100);                                        // {5,6}, t=20
  EXPECT_EQ(rb.expire(100, 85), 1u);                         // one frame, older than t=15
  EXPECT_EQ(rb.counters().drop_age, 4u);
  EXPECT_EQ(rb.counters().drop_unsent, 4u);
  // Growing never evicts: past the byte limit the tail refuses, and a new
  // frame then makes room by dropping the oldest.
  for (std::uint64_t d = 7; d <= 14; ++d) ASSERT_TRUE(extend(rb, d, 100));  // 1000 bytes
  EXPECT_FALSE(extend(rb, 15, 100));
  EXPECT_EQ(rb.counters().drop_full, 0u);
  ASSERT_TRUE(put(rb, 15, 100));
  EXPECT_EQ(rb.counters().drop_full, 10u);  // the frame {5..14}
  rb.clear();
  EXPECT_EQ(rb.counters().drop_cleared, 1u);
}

TEST(ReplayBuffer, ClearCountsEverything) {
  ReplayBuffer rb(10000);
  for (std::uint64_t d = 1; d <= 5; ++d) put(rb, d, 100);
  rb.clear();
  EXPECT_EQ(rb.frames(), 0u);
  EXPECT_EQ(rb.counters().drop_cleared, 5u);
  EXPECT_TRUE(rb.unsent().empty());
  put(rb, 6, 100);
  EXPECT_EQ(drain(rb, 100), (std::vector<std::uint64_t>{6}));
}

// ------------------------------------------------------------ SendQueue

// Offers packet `d` of `len` bytes the way the session does; true when queued.
bool offer(SendQueue& q, ReplayBuffer& rb, std::uint64_t d, bool stalled, std::size_t len = 1000) {
  const SendQueue::Admit a = q.admit(rb, [stalled] { return stalled; });
  if (a == SendQueue::Admit::drop) return false;
  EXPECT_TRUE(put(rb, d, len));
  if (a == SendQueue::Admit::keep) q.exempt_all(rb);
  return true;
}

// A packet is refused when the bytes already unsent exceed the limit (plus
// what is exempt), so the queue may end one packet over it.
TEST(SendQueue, HoldsTheLimitWhileDataMoves) {
  ReplayBuffer rb(1 << 20);
  SendQueue q(3000);
  bool asked = false;
  for (std::uint64_t d = 1; d <= 4; ++d) {
    EXPECT_EQ(q.admit(rb, [&] { return asked = true; }), SendQueue::Admit::take) << d;
    ASSERT_TRUE(put(rb, d, 1000));
  }
  EXPECT_FALSE(asked);  // never over the limit: the stall rule (a clock read) is not asked
  EXPECT_FALSE(offer(q, rb, 5, false));
  rb.sent(2000);
  EXPECT_TRUE(offer(q, rb, 5, false));
  EXPECT_TRUE(offer(q, rb, 6, false));
  EXPECT_FALSE(offer(q, rb, 7, false));
}

// After a resume the replay may exceed the limit and new packets still get
// the whole limit behind it; once the replay is sent, the limit holds again
// even though the queue never emptied (a tunnel that stays overloaded).
TEST(SendQueue, AResumesReplayIsExemptUntilSent) {
  ReplayBuffer rb(1 << 20);
  SendQueue q(3000);
  for (std::uint64_t d = 1; d <= 10; ++d) ASSERT_TRUE(put(rb, d, 1000));
  rb.restart();
  q.exempt_all(rb);  // 10000 bytes of replay
  EXPECT_EQ(q.exempt(rb), 10000u);
  std::uint64_t d = 11;
  for (; d <= 14; ++d) EXPECT_TRUE(offer(q, rb, d, false)) << "packet " << d << " dropped behind the replay";
  EXPECT_FALSE(offer(q, rb, d, false));  // 4000 behind the replay
  rb.sent(4000);                         // part of the replay went out
  EXPECT_EQ(q.exempt(rb), 6000u);
  EXPECT_FALSE(offer(q, rb, d, false));  // still 4000 behind what is left of it
  rb.sent(6000);                         // the rest: nothing exempt, 4000 unsent
  EXPECT_EQ(q.exempt(rb), 0u);
  EXPECT_FALSE(offer(q, rb, d, false));
  rb.sent(1000);
  EXPECT_TRUE(offer(q, rb, d, false));
}

// Everything a stall kept is exempt the same way: when data moves again,
// packets arriving behind it get the whole limit.
TEST(SendQueue, WhatAStallKeptIsExemptUntilSent) {
  ReplayBuffer rb(1 << 20);
  SendQueue q(3000);
  std::uint64_t d = 1;
  for (; d <= 4; ++d) EXPECT_TRUE(offer(q, rb, d, false));
  EXPECT_FALSE(offer(q, rb, d, false));  // over the limit, data moving: dropped
  for (; d <= 10; ++d) EXPECT_TRUE(offer(q, rb, d, true)) << "packet " << d << " dropped in the stall";
  EXPECT_EQ(q.exempt(rb), 10000u);
  rb.sent(500);  // data moves again
  for (int i = 0; i < 4; ++i, ++d) EXPECT_TRUE(offer(q, rb, d, false)) << "packet " << d << " dropped after the stall";
  EXPECT_FALSE(offer(q, rb, d, false));  // the limit behind the backlog is used up
  rb.sent(9500);                         // the backlog is out: 4000 unsent, nothing exempt
  EXPECT_EQ(q.exempt(rb), 0u);
  EXPECT_FALSE(offer(q, rb, d, false));
  rb.sent(1000);
  EXPECT_TRUE(offer(q, rb, d, false));
}

}  // namespace
