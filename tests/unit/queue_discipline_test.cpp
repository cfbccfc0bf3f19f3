#include <tunnel/codel.hpp>
#include <tunnel/pacer.hpp>
#include <tunnel/path_rate.hpp>

#include <gtest/gtest.h>

using namespace tunnel;
using namespace std::chrono_literals;

namespace {
const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
}

TEST(CoDel, ShortSojournNeverDrops) {
  CoDel c;
  for (int i = 0; i < 10000; ++i) ASSERT_FALSE(c.drop(t0 + i * 1ms, 4ms, 100000));
  EXPECT_EQ(c.drops(), 0u);
}

TEST(CoDel, SmallBacklogNeverDrops) {
  CoDel c;
  for (int i = 0; i < 10000; ++i) ASSERT_FALSE(c.drop(t0 + i * 1ms, 50ms, 1500));
}

TEST(CoDel, StandingQueueDropsAfterAnIntervalThenFaster) {
  CoDel c;
  std::vector<int> drop_times;
  for (int i = 0; i <= 1000; ++i) {
    if (c.drop(t0 + i * 1ms, 20ms, 100000)) drop_times.push_back(i);
  }
  ASSERT_GE(drop_times.size(), 5u);
  EXPECT_EQ(drop_times[0], 100);  // one interval above target
  // Control law: the next drop after the count-th comes interval / sqrt(count) later.
  EXPECT_NEAR(drop_times[1] - drop_times[0], 100, 1);
  EXPECT_NEAR(drop_times[2] - drop_times[1], 71, 1);
  EXPECT_NEAR(drop_times[3] - drop_times[2], 58, 1);
  EXPECT_TRUE(c.dropping());
  // Below target: the episode ends.
  EXPECT_FALSE(c.drop(t0 + 1001ms, 1ms, 100000));
  EXPECT_FALSE(c.dropping());
}

TEST(CoDel, ResetForgetsTheEpisode) {
  CoDel c;
  for (int i = 0; i <= 150; ++i) c.drop(t0 + i * 1ms, 20ms, 100000);
  EXPECT_TRUE(c.dropping());
  c.reset();
  EXPECT_FALSE(c.dropping());
  // A fresh interval must pass again before a drop.
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(c.drop(t0 + 200ms + i * 1ms, 20ms, 100000));
}

TEST(Pacer, HoldsTheRateOverTime) {
  Pacer p(8'000'000, 3000, t0);  // 1 MB/s, a 3000-byte bucket
  auto t = t0;
  std::uint64_t bytes = 0;
  for (int guard = 0; guard < 100000 && t < t0 + 1s; ++guard) {
    if (p.ready(t)) {
      p.sent(t, 1000);
      bytes += 1000;
    } else {
      t += p.wait(t);
    }
  }
  // One second at 1 MB/s plus the initial bucket (and one packet of debt).
  EXPECT_GE(bytes, 1'000'000u);
  EXPECT_LE(bytes, 1'005'000u);
}

TEST(Pacer, WaitIsExact) {
  Pacer p(8'000'000, 1000, t0);
  p.sent(t0, 1000);
  p.sent(t0, 500);  // 500 bytes of debt: 0.5 ms at 1 MB/s
  EXPECT_FALSE(p.ready(t0));
  EXPECT_EQ(p.wait(t0), 500us);
  EXPECT_TRUE(p.ready(t0 + 500us));
}

TEST(Pacer, ZeroRateIsUnpacedAndLongIdleDoesNotOverflow) {
  Pacer p;
  EXPECT_TRUE(p.ready(t0));
  p.sent(t0, 1'000'000);
  EXPECT_TRUE(p.ready(t0));
  Pacer q(100'000'000'000ull, 65535, t0);
  q.sent(t0, 65535);
  EXPECT_TRUE(q.ready(t0 + std::chrono::hours(24 * 365)));
  q.sent(t0 + std::chrono::hours(24 * 365), 65535);
  EXPECT_TRUE(q.ready(t0 + std::chrono::hours(24 * 365)));  // the bucket was full, not more
  q.sent(t0 + std::chrono::hours(24 * 365), 1);
  EXPECT_FALSE(q.ready(t0 + std::chrono::hours(24 * 365)));
}

TEST(PathRate, ParsesRates) {
  EXPECT_EQ(parse_rate("20mbit"), 20'000'000u);
  EXPECT_EQ(parse_rate("5mbit"), 5'000'000u);
  EXPECT_EQ(parse_rate("1.5mbit"), 1'500'000u);
  EXPECT_EQ(parse_rate("800kbit"), 800'000u);
  EXPECT_EQ(parse_rate("10gbit"), 10'000'000'000u);
  EXPECT_EQ(parse_rate("64bit"), 64u);
  for (const char* bad : {"", "mbit", "20", "20mb", "20Mbit", "-1mbit", "1.mbit", "0mbit", "1001gbit", "99999999999999999999mbit"}) {
    EXPECT_EQ(parse_rate(bad), 0u) << bad;
  }
}

TEST(PathRate, ParsesPathSpecs) {
  auto r = parse_path_spec("dsl0,down=20mbit,up=5mbit");
  ASSERT_EQ(r.error, RateError::ok);
  EXPECT_EQ(r.spec.name, "dsl0");
  EXPECT_EQ(r.spec.down_bps, 20'000'000u);
  EXPECT_EQ(r.spec.up_bps, 5'000'000u);
  r = parse_path_spec("lte");
  ASSERT_EQ(r.error, RateError::ok);
  EXPECT_EQ(r.spec.down_bps, 0u);
  EXPECT_EQ(parse_path_spec("lte,up=10mbit").spec.up_bps, 10'000'000u);

  struct Case { const char* text; RateError e; std::size_t at; };
  const Case cases[] = {
      {"", RateError::bad_name, 0},
      {",down=1mbit", RateError::bad_name, 0},
      {"averyveryverylongname", RateError::bad_name, 0},
      {"dsl0,down", RateError::bad_key, 5},
      {"dsl0,left=1mbit", RateError::bad_key, 5},
      {"dsl0,down=1mbit,down=2mbit", RateError::duplicate_key, 16},
      {"dsl0,down=fast", RateError::bad_rate, 10},
      {"dsl0,down=1mbit,up=1mbit,", RateError::bad_key, 25},
  };
  for (const auto& c : cases) {
    const auto p = parse_path_spec(c.text);
    EXPECT_EQ(p.error, c.e) << c.text;
    EXPECT_EQ(p.at, c.at) << c.text;
  }
}

TEST(PathRate, BulkPaceRateIsBelowTheSumOrUnpaced) {
  PathSpec paths[2] = {parse_path_spec("dsl,down=20mbit,up=5mbit").spec, parse_path_spec("lte,down=30mbit,up=10mbit").spec};
  EXPECT_EQ(bulk_pace_rate(paths, 2, true, 950), 47'500'000u);
  EXPECT_EQ(bulk_pace_rate(paths, 2, false, 950), 14'250'000u);
  paths[1].up_bps = 0;
  EXPECT_EQ(bulk_pace_rate(paths, 2, false, 950), 0u);
}
