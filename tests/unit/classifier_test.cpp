#include <tunnel/classifier.hpp>

#include <gtest/gtest.h>

#include <vector>

using namespace tunnel::classify;
using namespace std::chrono_literals;

namespace {

// An IPv4/UDP packet of `len` bytes from 10.0.0.<host>:sport to 192.0.2.1:dport.
std::vector<std::uint8_t> udp4(std::size_t len, std::uint8_t host, std::uint16_t sport, std::uint16_t dport,
                               std::uint8_t dscp = 0) {
  std::vector<std::uint8_t> p(std::max<std::size_t>(len, 28), 0);  // a shorter packet is cut below
  p[0] = 0x45;
  p[1] = static_cast<std::uint8_t>(dscp << 2);
  p[2] = static_cast<std::uint8_t>(len >> 8);
  p[3] = static_cast<std::uint8_t>(len);
  p[8] = 64;
  p[9] = 17;
  p[12] = 10; p[15] = host;
  p[16] = 192; p[18] = 2; p[19] = 1;
  p[20] = static_cast<std::uint8_t>(sport >> 8); p[21] = static_cast<std::uint8_t>(sport);
  p[22] = static_cast<std::uint8_t>(dport >> 8); p[23] = static_cast<std::uint8_t>(dport);
  p.resize(len);
  return p;
}

std::vector<std::uint8_t> udp6(std::size_t len, std::uint8_t dscp, bool with_hop_by_hop) {
  std::vector<std::uint8_t> p(len, 0);
  p[0] = static_cast<std::uint8_t>(0x60 | dscp >> 2);
  p[1] = static_cast<std::uint8_t>((dscp & 3) << 6);
  p[6] = with_hop_by_hop ? 0 : 17;
  p[8] = 0xfd; p[23] = 2;
  p[24] = 0xfd; p[39] = 1;
  std::size_t off = 40;
  if (with_hop_by_hop) { p[40] = 17; p[41] = 0; off = 48; }
  p[off] = 0x13; p[off + 1] = 0x88;      // sport 5000
  p[off + 2] = 0x0d; p[off + 3] = 0x96;  // dport 3478
  return p;
}

const auto t0 = Clock::time_point{} + 1000s;

}  // namespace

TEST(Inspect, Ipv4AndIpv6WithExtensionHeaders) {
  auto p4 = udp4(200, 7, 4000, 53, 46);
  auto i4 = inspect(p4);
  ASSERT_TRUE(i4);
  EXPECT_EQ(i4->key.family, 4);
  EXPECT_EQ(i4->key.proto, 17);
  EXPECT_EQ(i4->key.sport, 4000);
  EXPECT_EQ(i4->key.dport, 53);
  EXPECT_EQ(i4->dscp, 46);
  EXPECT_EQ(i4->length, 200u);

  for (bool hbh : {false, true}) {
    auto p6 = udp6(120, 34, hbh);
    auto i6 = inspect(p6);
    ASSERT_TRUE(i6);
    EXPECT_EQ(i6->key.family, 6);
    EXPECT_EQ(i6->key.proto, 17);
    EXPECT_EQ(i6->key.sport, 5000);
    EXPECT_EQ(i6->key.dport, 3478);
    EXPECT_EQ(i6->dscp, 34);
  }
  EXPECT_FALSE(inspect(std::vector<std::uint8_t>(10, 0x45)));
  EXPECT_FALSE(inspect(std::vector<std::uint8_t>(60, 0x00)));
  // A truncated transport header leaves the ports 0.
  auto short4 = udp4(22, 1, 1, 1);
  EXPECT_EQ(inspect(short4)->key.sport, 0);
}

TEST(Classifier, DscpDefaultsAreRealtime) {
  Classifier c({});
  for (unsigned d : {46u, 34u, 36u, 38u, 32u, 40u}) {
    auto p = udp4(1200, 1, static_cast<std::uint16_t>(1000 + d), 9, static_cast<std::uint8_t>(d));
    const auto r = c.classify(p, t0);
    EXPECT_EQ(r.cls, TrafficClass::realtime) << d;
    EXPECT_EQ(r.why, Reason::dscp) << d;
  }
  auto cs1 = udp4(1200, 1, 2000, 9, 8);
  EXPECT_EQ(c.classify(cs1, t0).cls, TrafficClass::bulk);
}

TEST(Classifier, DscpMarkedBulkFlowAboveTheCapIsBulk) {
  ClassifierConfig cfg;
  cfg.dscp_flow_cap_bps = 1'000'000;
  Classifier c(cfg);
  auto p = udp4(1200, 1, 1, 1, 46);
  TrafficClass last{};
  for (int i = 0; i < 1000; ++i) last = c.classify(p, t0 + i * 1ms).cls;  // 9.6 Mbit/s
  EXPECT_EQ(last, TrafficClass::bulk);
}

TEST(Classifier, VoiceLikeFlowIsRealtimeByBehaviour) {
  Classifier c({});
  auto p = udp4(200, 1, 4000, 5004);  // 200 B every 20 ms = 80 kbit/s
  for (int i = 0; i < 500; ++i) {
    const auto r = c.classify(p, t0 + i * 20ms);
    ASSERT_EQ(r.cls, TrafficClass::realtime) << i;
    ASSERT_EQ(r.why, Reason::behaviour);
  }
  EXPECT_EQ(c.counters().demotions, 0u);
}

TEST(Classifier, BulkFlowIsBulkFromItsFirstLargePacket) {
  Classifier c({});
  auto p = udp4(1200, 1, 4000, 5201);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(c.classify(p, t0 + i * 1ms).cls, TrafficClass::bulk);
}

TEST(Classifier, SmallPacketsAtAHighRateAreDemotedWithinTheWindow) {
  Classifier c({});
  auto p = udp4(100, 1, 4000, 5201);  // 100 B every 1 ms = 800 kbit/s
  int realtime = 0;
  for (int i = 0; i < 500; ++i) realtime += c.classify(p, t0 + i * 1ms).cls == TrafficClass::realtime;
  // The budget is 200 kbit/s * 0.5 s = 12.5 kB; demoted after 1.5 x that.
  EXPECT_LE(realtime, 190);
  EXPECT_EQ(c.counters().demotions, 1u);
  EXPECT_EQ(c.classify(p, t0 + 500ms).cls, TrafficClass::bulk);
}

TEST(Classifier, HysteresisNeedsSeveralGoodWindowsToPromote) {
  Classifier c({});
  auto big = udp4(1200, 1, 4000, 5004);
  auto small = udp4(200, 1, 4000, 5004);
  auto t = t0;
  for (int i = 0; i < 50; ++i, t += 10ms) c.classify(big, t);  // bulk
  int first_rt = -1;
  for (int i = 0; i < 200 && first_rt < 0; ++i, t += 20ms) {
    if (c.classify(small, t).cls == TrafficClass::realtime) first_rt = i;
  }
  // The big packets' window closes with the first small one, then four good
  // windows of 0.5 s: about 2 s of small packets.
  EXPECT_GE(first_rt, 90);
  EXPECT_LE(first_rt, 130);
  EXPECT_EQ(c.counters().promotions, 1u);
}

TEST(Classifier, FlowBetweenTheThresholdsDoesNotFlap) {
  Classifier c({});
  // 300 B every 10 ms = 240 kbit/s: above 200 kbit/s, below the demotion
  // threshold of 300: it starts realtime and stays.
  auto p = udp4(300, 1, 4000, 5004);
  std::uint64_t flips = 0;
  TrafficClass last = c.classify(p, t0).cls;
  for (int i = 1; i < 1000; ++i) {
    const auto cls = c.classify(p, t0 + i * 10ms).cls;
    flips += cls != last;
    last = cls;
  }
  EXPECT_EQ(flips, 0u);
  EXPECT_EQ(last, TrafficClass::realtime);
}

TEST(Classifier, RulesComeFirst) {
  const Rule rules[] = {parse_rule("bulk:dport=5004").rule, parse_rule("realtime:dport=5201").rule};
  ClassifierConfig cfg;
  cfg.rules = rules;
  Classifier c(cfg);
  auto ef_to_5004 = udp4(100, 1, 1, 5004, 46);
  EXPECT_EQ(c.classify(ef_to_5004, t0).cls, TrafficClass::bulk);
  EXPECT_EQ(c.classify(ef_to_5004, t0).why, Reason::rule);
  auto big = udp4(1400, 1, 1, 5201);
  EXPECT_EQ(c.classify(big, t0).cls, TrafficClass::realtime);
}

TEST(Classifier, TableIsBoundedAndExpiresIdleFlows) {
  ClassifierConfig cfg;
  cfg.capacity = 64;
  cfg.idle_timeout = 1s;
  Classifier c(cfg);
  EXPECT_EQ(c.capacity(), 64u);
  for (int i = 0; i < 1000; ++i) {
    auto p = udp4(100, static_cast<std::uint8_t>(i % 250), static_cast<std::uint16_t>(i), 9);
    c.classify(p, t0);
  }
  EXPECT_LE(c.live_flows(t0), 64u);
  EXPECT_GT(c.counters().flows_evicted, 0u);
  EXPECT_EQ(c.live_flows(t0 + 2s), 0u);
  // After expiry, new flows take the slots without evictions.
  const auto evicted = c.counters().flows_evicted;
  for (int i = 0; i < 16; ++i) {
    auto p = udp4(100, 1, static_cast<std::uint16_t>(i), 10);
    c.classify(p, t0 + 3s);
  }
  EXPECT_EQ(c.counters().flows_evicted, evicted);
  EXPECT_EQ(c.live_flows(t0 + 3s), 16u);
}

TEST(Classifier, SnapshotListsFlowsWithClassAndReason) {
  Classifier c({});
  auto voice = udp4(200, 1, 4000, 5004);
  auto bulk = udp4(1200, 2, 4001, 5201);
  auto ef = udp4(1200, 3, 4002, 5202, 46);
  for (int i = 0; i < 60; ++i) {
    c.classify(voice, t0 + i * 20ms);
    c.classify(bulk, t0 + i * 20ms);
    c.classify(ef, t0 + i * 20ms);
  }
  FlowInfo out[8];
  const auto n = c.snapshot(out, t0 + 1200ms);
  ASSERT_EQ(n, 3u);
  int seen = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(out[i].packets, 60u);
    if (out[i].key.dport == 5004) { EXPECT_EQ(out[i].cls, TrafficClass::realtime); EXPECT_EQ(out[i].why, Reason::behaviour); seen |= 1; }
    if (out[i].key.dport == 5201) { EXPECT_EQ(out[i].cls, TrafficClass::bulk); seen |= 2; }
    if (out[i].key.dport == 5202) { EXPECT_EQ(out[i].cls, TrafficClass::realtime); EXPECT_EQ(out[i].why, Reason::dscp); seen |= 4; }
  }
  EXPECT_EQ(seen, 7);
  EXPECT_EQ(c.snapshot(std::span<FlowInfo>(out, 1), t0 + 1200ms), 1u);
}

TEST(Classifier, GarbageIsBulkAndCounted) {
  Classifier c({});
  std::vector<std::uint8_t> junk(5, 0xff);
  EXPECT_EQ(c.classify(junk, t0).cls, TrafficClass::bulk);
  EXPECT_EQ(c.counters().uninspectable, 1u);
}
