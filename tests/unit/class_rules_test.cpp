#include <tunnel/class_rules.hpp>

#include <gtest/gtest.h>

using namespace tunnel::classify;

namespace {

PacketInfo udp4(const char* src, const char* dst, std::uint16_t sport, std::uint16_t dport, std::uint8_t dscp = 0) {
  PacketInfo p;
  p.key.family = 4;
  p.key.proto = 17;
  p.key.sport = sport;
  p.key.dport = dport;
  unsigned a, b, c, d;
  sscanf(src, "%u.%u.%u.%u", &a, &b, &c, &d);
  p.key.src = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(c), static_cast<std::uint8_t>(d)};
  sscanf(dst, "%u.%u.%u.%u", &a, &b, &c, &d);
  p.key.dst = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(c), static_cast<std::uint8_t>(d)};
  p.dscp = dscp;
  p.length = 100;
  return p;
}

}  // namespace

TEST(ClassRules, ParsesTheIssueExamples) {
  auto r = parse_rule("realtime:proto=udp,dport=3478-3481");
  ASSERT_EQ(r.error, RuleError::ok);
  EXPECT_EQ(r.rule.cls, TrafficClass::realtime);
  EXPECT_EQ(r.rule.proto, 17);
  EXPECT_EQ(r.rule.dport.lo, 3478);
  EXPECT_EQ(r.rule.dport.hi, 3481);
  EXPECT_TRUE(matches(r.rule, udp4("10.0.0.1", "1.2.3.4", 5000, 3479)));
  EXPECT_FALSE(matches(r.rule, udp4("10.0.0.1", "1.2.3.4", 5000, 3482)));

  r = parse_rule("bulk:dst=198.51.100.0/24");
  ASSERT_EQ(r.error, RuleError::ok);
  EXPECT_EQ(r.rule.cls, TrafficClass::bulk);
  EXPECT_TRUE(matches(r.rule, udp4("10.0.0.1", "198.51.100.77", 1, 2)));
  EXPECT_FALSE(matches(r.rule, udp4("10.0.0.1", "198.51.101.1", 1, 2)));

  r = parse_rule("realtime:dscp=46");
  ASSERT_EQ(r.error, RuleError::ok);
  EXPECT_TRUE(matches(r.rule, udp4("1.1.1.1", "2.2.2.2", 1, 2, 46)));
  EXPECT_FALSE(matches(r.rule, udp4("1.1.1.1", "2.2.2.2", 1, 2, 0)));
  EXPECT_EQ(parse_rule("realtime:dscp=ef").rule.dscp, 46);
  EXPECT_EQ(parse_rule("realtime:dscp=af41").rule.dscp, 34);
  EXPECT_EQ(parse_rule("realtime:dscp=cs5").rule.dscp, 40);
}

TEST(ClassRules, Ipv6PrefixAndFamily) {
  auto r = parse_rule("realtime:src=fd00:10::/64");
  ASSERT_EQ(r.error, RuleError::ok);
  PacketInfo p;
  p.key.family = 6;
  p.key.src = {0xfd, 0, 0, 0x10};
  EXPECT_TRUE(matches(r.rule, p));
  p.key.src[7] = 1;
  EXPECT_FALSE(matches(r.rule, p));
  // An IPv4 packet never matches an IPv6 prefix.
  EXPECT_FALSE(matches(r.rule, udp4("253.0.0.16", "1.1.1.1", 1, 1)));
}

TEST(ClassRules, ClosedErrorsWithOffsets) {
  struct Case { const char* text; RuleError e; std::size_t at; };
  const Case cases[] = {
      {"voice:proto=udp", RuleError::bad_class, 0},
      {"realtime", RuleError::bad_class, 0},
      {"realtime:", RuleError::no_keys, 9},
      {"realtime:port=5", RuleError::bad_key, 9},
      {"realtime:proto", RuleError::bad_key, 9},
      {"realtime:proto=udp,", RuleError::bad_key, 19},
      {"realtime:proto=udp,proto=tcp", RuleError::duplicate_key, 19},
      {"realtime:proto=sctpx", RuleError::bad_proto, 15},
      {"realtime:proto=256", RuleError::bad_proto, 15},
      {"realtime:dport=70000", RuleError::bad_port, 15},
      {"realtime:dport=10-5", RuleError::bad_port, 15},
      {"realtime:dport=-5", RuleError::bad_port, 15},
      {"realtime:sport=1-", RuleError::bad_port, 15},
      {"bulk:dst=198.51.100.1/24", RuleError::bad_prefix, 9},
      {"bulk:dst=198.51.100.0/33", RuleError::bad_prefix, 9},
      {"bulk:dst=fd00::/129", RuleError::bad_prefix, 9},
      {"bulk:dst=example.com", RuleError::bad_prefix, 9},
      {"bulk:dscp=64", RuleError::bad_dscp, 10},
      {"bulk:dscp=af44", RuleError::bad_dscp, 10},
  };
  for (const auto& c : cases) {
    const auto r = parse_rule(c.text);
    EXPECT_EQ(r.error, c.e) << c.text;
    EXPECT_EQ(r.at, c.at) << c.text;
    EXPECT_FALSE(to_string(r.error).empty());
  }
}

TEST(ClassRules, AllKeysTogether) {
  auto r = parse_rule("realtime:proto=17,sport=1000-2000,dport=53,src=10.0.0.0/8,dst=0.0.0.0/0,dscp=0");
  ASSERT_EQ(r.error, RuleError::ok);
  EXPECT_TRUE(matches(r.rule, udp4("10.1.2.3", "9.9.9.9", 1500, 53)));
  EXPECT_FALSE(matches(r.rule, udp4("11.1.2.3", "9.9.9.9", 1500, 53)));
  EXPECT_FALSE(matches(r.rule, udp4("10.1.2.3", "9.9.9.9", 999, 53)));
}
