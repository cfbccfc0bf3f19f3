// The liveness timers of a link under a fake clock: heartbeats, the dead
// interval, unacknowledged data, the session hold.
#include <tunnel/liveness.hpp>

#include <gtest/gtest.h>

// GCC 12 at -O1 with -fsanitize=address (scripts/test.sh's sanitizer build)
// warns that Liveness's std::optional<time_point> may be read uninitialized
// once these tests inline it; the optional is engaged before every read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace {
using namespace tunnel;
using namespace std::chrono_literals;

TEST(Liveness, HeartbeatAndDeadIntervalUnderAFakeClock) {
  using T = Liveness::Clock::time_point;
  const T t0{};
  Liveness l(1000ms, 3000ms, 10000ms, t0);
  EXPECT_FALSE(l.is_connected());
  EXPECT_FALSE(l.expired(t0 + 10000ms));
  EXPECT_TRUE(l.expired(t0 + 10001ms));  // never connected: the hold runs from creation
  l.connected(t0);
  EXPECT_FALSE(l.heartbeat_due(t0 + 999ms));
  EXPECT_TRUE(l.heartbeat_due(t0 + 1000ms));
  l.heartbeat_sent(t0 + 1000ms);
  EXPECT_FALSE(l.heartbeat_due(t0 + 1500ms));
  EXPECT_EQ(l.dead(t0 + 3000ms), tunnel::Fault::none);
  EXPECT_NE(l.dead(t0 + 3001ms), tunnel::Fault::none);
  l.on_rx(t0 + 2500ms);
  EXPECT_EQ(l.dead(t0 + 5500ms), tunnel::Fault::none);
  EXPECT_NE(l.dead(t0 + 5501ms), tunnel::Fault::none);
}

TEST(Liveness, UnacknowledgedDataCountsAsDeadEvenWhileHeartbeatsArrive) {
  using T = Liveness::Clock::time_point;
  const T t0{};
  Liveness l(1000ms, 3000ms, 10000ms, t0);
  l.connected(t0);
  l.on_unacked(t0 + 100ms);
  for (auto t = t0; t < t0 + 4000ms; t += 500ms) l.on_rx(t);  // the peer keeps talking
  EXPECT_EQ(l.dead(t0 + 3100ms), tunnel::Fault::none);
  EXPECT_EQ(l.dead(t0 + 3101ms), tunnel::Fault::dead_unacked);
  EXPECT_FALSE(l.ack_stalled(t0 + 600ms, 500ms));
  EXPECT_TRUE(l.ack_stalled(t0 + 601ms, 500ms));
  l.on_ack(t0 + 1000ms, true);  // progress, more still unacknowledged: the wait starts again
  EXPECT_FALSE(l.ack_stalled(t0 + 1500ms, 500ms));
  l.on_ack(t0 + 3000ms, false);  // everything acknowledged: nothing to wait for
  EXPECT_FALSE(l.ack_stalled(t0 + 9000ms, 500ms));
  EXPECT_EQ(l.dead(t0 + 3900ms), tunnel::Fault::none);
}

TEST(Liveness, HoldExpiresOnlyWhileDisconnected) {
  using T = Liveness::Clock::time_point;
  const T t0{};
  Liveness l(1000ms, 3000ms, 10000ms, t0);
  l.connected(t0);
  EXPECT_FALSE(l.expired(t0 + 1h));
  l.disconnected(t0 + 1000ms);
  EXPECT_EQ(l.dead(t0 + 1h), tunnel::Fault::none);  // no connection to be dead
  EXPECT_FALSE(l.heartbeat_due(t0 + 1h));
  EXPECT_FALSE(l.expired(t0 + 11000ms));
  EXPECT_TRUE(l.expired(t0 + 11001ms));
  l.disconnected(t0 + 5000ms);  // a second report does not restart the hold
  EXPECT_TRUE(l.expired(t0 + 11001ms));
  l.restart_hold(t0 + 20000ms);  // session reset: a fresh hold
  EXPECT_FALSE(l.expired(t0 + 30000ms));
  l.connected(t0 + 11000ms);
  EXPECT_FALSE(l.expired(t0 + 1h));
}

}  // namespace
