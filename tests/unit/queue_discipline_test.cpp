#include <tunnel/codel.hpp>
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

TEST(PathRate, DownlinkRatesRoundTrip) {
  const LinkRate in[] = {{1, 20'000'000}, {2, 30'000'000}};
  const std::string body = format_downlink_rates(in);
  EXPECT_EQ(body, "1 20000000\n2 30000000\n");
  std::vector<LinkRate> out;
  ASSERT_TRUE(parse_downlink_rates(body, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].link, 2u);
  EXPECT_EQ(out[1].bps, 30'000'000u);
  EXPECT_TRUE(parse_downlink_rates("", out));
  EXPECT_TRUE(out.empty());
  for (const char* bad : {"1 20000000", "0 5\n", "256 5\n", "1 0\n", "1 05\n", "1  5\n", "1 5\n1 6\n",
                          "x 5\n", "1 1000000000001\n", "1 -5\n", "1\n"})
    EXPECT_FALSE(parse_downlink_rates(bad, out)) << bad;
}
