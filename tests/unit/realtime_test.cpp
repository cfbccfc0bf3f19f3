#include <tunnel/first_copy.hpp>
#include <tunnel/realtime_scheduler.hpp>
#include <tunnel/realtime_wire.hpp>

#include <gtest/gtest.h>

#include <vector>

using namespace tunnel::realtime;
using namespace std::chrono_literals;

namespace {

const auto t0 = Clock::time_point{} + 100s;

std::vector<std::uint8_t> udp4(std::size_t len) {
  std::vector<std::uint8_t> p(len, 0);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(len >> 8);
  p[3] = static_cast<std::uint8_t>(len);
  p[9] = 17;
  return p;
}

// Answers every probe due on the links in `alive` after `rtt`, as a peer would.
void run_probes(Scheduler& s, Clock::time_point now, LinkMask alive, std::chrono::milliseconds rtt[]) {
  const LinkMask due = s.probes_due(now);
  for (std::size_t i = 0; i < kMaxLinks; ++i) {
    if (!(due >> i & 1)) continue;
    Probe p = s.probe(i, now);
    if (alive >> i & 1) {
      p.ack = true;
      s.on_probe_ack(i, now + rtt[i], p);
    }
  }
}

}  // namespace

TEST(RealtimeWire, RtDataRoundTrip) {
  auto pkt = udp4(160);
  std::vector<std::uint8_t> frame(kRtDataHeaderSize + pkt.size());
  encode_rt_data_header(frame.data(), 0x0102030405060708ull, pkt.size());
  std::copy(pkt.begin(), pkt.end(), frame.begin() + kRtDataHeaderSize);
  EXPECT_EQ(frame[1], kRtDataType);
  EXPECT_EQ(frame[7], kRseqSize + 160);
  RtData d;
  ASSERT_EQ(parse_rt_data(std::span(frame).subspan(kCommonHeaderSize), d), BodyError::ok);
  EXPECT_EQ(d.rseq, 0x0102030405060708ull);
  EXPECT_EQ(d.packet.size(), 160u);
  EXPECT_EQ(parse_rt_data(std::span(frame).subspan(kCommonHeaderSize, 8), d), BodyError::bad_length);
  EXPECT_EQ(parse_rt_data(std::span(frame).subspan(kCommonHeaderSize, 100), d), BodyError::bad_packet);
}

TEST(RealtimeWire, ProbeRoundTripAndErrors) {
  std::uint8_t f[kProbeFrameSize];
  const Probe p{.ack = true, .id = 7, .timestamp = 123456789012345ull, .mark = 99};
  ASSERT_EQ(encode_probe(f, p), kProbeFrameSize);
  EXPECT_EQ(f[1], kProbeType);
  Probe q;
  ASSERT_EQ(parse_probe(std::span(f).subspan(kCommonHeaderSize), q), BodyError::ok);
  EXPECT_TRUE(q.ack);
  EXPECT_EQ(q.id, 7u);
  EXPECT_EQ(q.timestamp, p.timestamp);
  EXPECT_EQ(q.mark, 99u);
  EXPECT_EQ(parse_probe(std::span(f).subspan(kCommonHeaderSize, 23), q), BodyError::bad_length);
  f[kCommonHeaderSize] = 2;
  EXPECT_EQ(parse_probe(std::span(f).subspan(kCommonHeaderSize), q), BodyError::bad_kind);
  f[kCommonHeaderSize] = 0;
  f[kCommonHeaderSize + 2] = 1;
  EXPECT_EQ(parse_probe(std::span(f).subspan(kCommonHeaderSize), q), BodyError::bad_kind);
}

TEST(FirstCopy, KeepsTheFirstCopyOnly) {
  FirstCopyFilter f;
  for (std::uint64_t s = 0; s < 5000; ++s) {
    ASSERT_EQ(f.accept(s), FirstCopyFilter::Verdict::deliver);
    ASSERT_EQ(f.accept(s), FirstCopyFilter::Verdict::duplicate);  // the other link's copy
  }
  EXPECT_EQ(f.counters().delivered, 5000u);
  EXPECT_EQ(f.counters().duplicates, 5000u);
  EXPECT_EQ(f.counters().missing, 0u);
}

TEST(FirstCopy, LateCopiesAndLossesAcrossTheWindow) {
  FirstCopyFilter f;
  f.accept(100);  // starts the window: nothing below counts as missing
  f.accept(102);
  EXPECT_EQ(f.accept(101), FirstCopyFilter::Verdict::deliver);  // late, first copy
  EXPECT_EQ(f.accept(101), FirstCopyFilter::Verdict::duplicate);
  f.accept(104);  // 103 never arrives
  f.accept(104 + FirstCopyFilter::kWindow);  // 103 leaves the window
  EXPECT_EQ(f.counters().missing, 1u);
  EXPECT_EQ(f.accept(103), FirstCopyFilter::Verdict::too_old);
  // A jump far ahead: the skipped sequences below the new window are missing
  // at once, those still inside it when they leave it.
  FirstCopyFilter g;
  g.accept(0);
  g.accept(10 * FirstCopyFilter::kWindow);
  EXPECT_EQ(g.counters().missing, 9 * FirstCopyFilter::kWindow);
  g.accept(11 * FirstCopyFilter::kWindow);
  EXPECT_EQ(g.counters().missing, 10 * FirstCopyFilter::kWindow - 1);  // 1 .. 10 kWindow - 1
  g.reset();
  EXPECT_EQ(g.accept(5), FirstCopyFilter::Verdict::deliver);
}

TEST(Scheduler, RedundantSendsOnEveryLiveLink) {
  Scheduler s({.mode = Mode::redundant});
  EXPECT_EQ(s.pick(t0).links, 0);  // no link yet: the caller falls back
  s.link_up(0, t0);
  s.link_up(1, t0);
  const Pick p = s.pick(t0);
  EXPECT_EQ(p.links, 0b11);
  EXPECT_EQ(p.rseq, 1u);
  s.link_down(1);
  EXPECT_EQ(s.pick(t0).links, 0b01);
  EXPECT_EQ(s.counters().no_link, 1u);
}

TEST(Scheduler, NoProbesWhileIdle) {
  Scheduler s({.mode = Mode::fastest});
  s.link_up(0, t0);
  s.link_up(1, t0);
  EXPECT_EQ(s.probes_due(t0 + 10s), 0);
  EXPECT_EQ(s.next_wakeup(t0 + 10s), Clock::time_point::max());
  s.pick(t0 + 10s);
  EXPECT_EQ(s.probes_due(t0 + 10s), 0b11);
  // Idle again after active_for: probes stop; the links are not declared dead.
  EXPECT_EQ(s.probes_due(t0 + 12s), 0);
  EXPECT_EQ(s.check(t0 + 60s).died, 0);
  EXPECT_TRUE(s.status(0).live);
}

TEST(Scheduler, FastestPicksTheLowestRttWithAMargin) {
  Scheduler s({.mode = Mode::fastest});
  std::chrono::milliseconds rtt[kMaxLinks] = {80ms, 20ms};
  s.link_up(0, t0);
  s.link_up(1, t0);
  auto t = t0;
  EXPECT_EQ(s.pick(t).links, 0b01);  // no RTT yet: the first live link
  for (int i = 0; i < 20; ++i, t += 20ms) {
    run_probes(s, t, 0b11, rtt);
    s.pick(t);
  }
  EXPECT_EQ(s.current(), 1u);
  EXPECT_EQ(s.pick(t).links, 0b10);
  EXPECT_NEAR(s.status(1).srtt.count(), 20000, 500);
  // LTE becomes 3 ms faster than DSL: below the margin, no switch.
  rtt[0] = 17ms;
  for (int i = 0; i < 100; ++i, t += 20ms) { run_probes(s, t, 0b11, rtt); s.pick(t); }
  EXPECT_EQ(s.current(), 1u);
  rtt[0] = 10ms;
  for (int i = 0; i < 100; ++i, t += 20ms) { run_probes(s, t, 0b11, rtt); s.pick(t); }
  EXPECT_EQ(s.current(), 0u);
  EXPECT_EQ(s.counters().switches, 2u);  // to DSL once measured, back to LTE
}

// A silent blackhole of the fast link: fastest mode fails over within 150 ms
// and names the packets to resend.
TEST(Scheduler, FastestFailsOverWithin150msOfASilentBlackhole) {
  Scheduler s({.mode = Mode::fastest});
  std::chrono::milliseconds rtt[kMaxLinks] = {20ms, 80ms};
  s.link_up(0, t0);
  s.link_up(1, t0);
  auto t = t0;
  // 20 ms packets, probes every 50 ms (the caller's timer), 5 ms ticks.
  Clock::time_point cut{}, switched{};
  std::uint64_t first_after_cut = 0;
  Failover seen;
  for (int tick = 0; tick < 600; ++tick, t += 5ms) {
    const bool blackholed = tick >= 300;
    if (blackholed && cut == Clock::time_point{}) { cut = t; first_after_cut = s.next_rseq(); }
    run_probes(s, t, blackholed ? 0b10 : 0b11, rtt);
    if (tick % 4 == 0) {
      const Pick p = s.pick(t);
      if (blackholed && p.links == 0b10 && switched == Clock::time_point{}) switched = t;
    }
    const Failover f = s.check(t);
    if (f.died) seen = f;
  }
  ASSERT_NE(switched, Clock::time_point{});
  EXPECT_LE(switched - cut, 150ms);
  EXPECT_EQ(seen.died, 0b01);
  ASSERT_TRUE(seen.resend);
  // Everything sent on the dead link since the cut is named for resending.
  EXPECT_LE(seen.resend_from, first_after_cut);
  EXPECT_GE(first_after_cut - seen.resend_from, 0u);
  EXPECT_LE(first_after_cut - seen.resend_from, 3u);  // at most one probe interval before the cut
  EXPECT_EQ(s.counters().failovers, 1u);
  EXPECT_FALSE(s.status(0).live);
  EXPECT_EQ(s.status(0).deaths, 1u);
  // The link answers again: live again, and being faster, it carries realtime.
  run_probes(s, t, 0b11, rtt);
  s.on_rx(0, t + 20ms);
  EXPECT_TRUE(s.status(0).live);
  EXPECT_EQ(s.pick(t + 20ms).links, 0b01);
}

TEST(Scheduler, LinkDownFailsOverAtOnce) {
  Scheduler s({.mode = Mode::fastest});
  s.link_up(0, t0);
  s.link_up(1, t0);
  s.pick(t0);
  const Failover f = s.link_down(0);
  EXPECT_EQ(f.died, 0b01);
  EXPECT_TRUE(f.resend);
  EXPECT_EQ(f.resend_from, 0u);
  EXPECT_EQ(s.pick(t0).links, 0b10);
}

TEST(Scheduler, ActivityAfterIdleDoesNotKillLinksAtOnce) {
  Scheduler s({.mode = Mode::redundant});
  s.link_up(0, t0);
  s.pick(t0 + 60s);  // last arrival a minute ago: silence counts from now
  EXPECT_EQ(s.check(t0 + 60s + 50ms).died, 0);
  EXPECT_EQ(s.check(t0 + 60s + 151ms).died, 0b01);  // 50 + 100 ms (no RTT yet)
}

TEST(Scheduler, PassiveSideNeitherProbesNorDeclaresSilence) {
  Scheduler s({.mode = Mode::redundant, .prober = false});
  s.link_up(0, t0);
  s.link_up(1, t0);
  s.pick(t0);
  EXPECT_EQ(s.probes_due(t0), 0);
  EXPECT_EQ(s.check(t0 + 500ms).died, 0);
  EXPECT_EQ(s.next_wakeup(t0), Clock::time_point::max());
  EXPECT_EQ(s.link_down(1).died, 0b10);
  EXPECT_EQ(s.pick(t0 + 500ms).links, 0b01);
}

TEST(Scheduler, StaleRule) {
  Scheduler s;
  EXPECT_FALSE(s.stale(t0, t0 + 150ms));
  EXPECT_TRUE(s.stale(t0, t0 + 151ms));
  Mode m{};
  EXPECT_TRUE(parse_mode("fastest", m));
  EXPECT_EQ(m, Mode::fastest);
  EXPECT_FALSE(parse_mode("Fastest", m));
}
