// Memory a gateway can afford: buffers grow on demand and shrink back when a
// link goes quiet (LinkCore, ReplayBuffer), and the gateway's memory limit
// refuses new sessions ('gateway full') and sheds replay buffers, counted.
#include "harness.hpp"

#include <tunnel/link_core.hpp>
#include <tunnel/replay_buffer.hpp>

#include <gtest/gtest.h>

#include <cstring>

namespace inproc {
namespace {
using tunnel::LinkCore;
using Clock = LinkCore::Clock;

void pipe(LinkCore& from, LinkCore& to, Clock::time_point now) {
  for (int guard = 0; guard < 100000; ++guard) {
    iovec iov[2];
    const int n = from.output(iov);
    if (n == 0) return;
    std::size_t took = 0;
    for (int i = 0; i < n; ++i) {
      auto space = to.rx_space();
      const std::size_t k = std::min(iov[i].iov_len, space.size());
      std::memcpy(space.data(), iov[i].iov_base, k);
      to.received(k, now);
      took += k;
      if (k < iov[i].iov_len) break;
    }
    from.sent(took, now);
    for (;;) {  // the receiver drains as the shell does
      const auto ev = to.next(now);
      if (ev.kind == LinkCore::RxKind::none) break;
    }
    to.rx_done();
  }
}

TEST(Memory, ReplayBufferAllocatesOnDemandAndTrimsWhenEmpty) {
  tunnel::ReplayBuffer rb(1 << 20);
  EXPECT_EQ(rb.memory_bytes(), 0u);
  for (std::uint64_t d = 1; d <= 500; ++d) {
    std::uint8_t* p = rb.prepare(1400);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0, 1400);
    rb.commit(1400, d, 0);
  }
  EXPECT_GE(rb.capacity(), 500u * 1400);
  rb.sent(rb.unsent_bytes());
  rb.ack(499);
  rb.trim();  // one frame left: shrinks to twice what is live (at least the floor)
  EXPECT_EQ(rb.capacity(), tunnel::ReplayBuffer::kMinBytes);
  EXPECT_EQ(rb.frames(), 1u);
  rb.ack(500);
  rb.trim();
  EXPECT_EQ(rb.memory_bytes(), 0u);
  // And it still works afterwards.
  ASSERT_NE(rb.prepare(100), nullptr);
  rb.commit(100, 501, 0);
  EXPECT_EQ(rb.unsent_bytes(), 100u);
}

TEST(Memory, ShedDropsTheOldestFramesCounted) {
  tunnel::ReplayBuffer rb(1 << 20);
  for (std::uint64_t d = 1; d <= 10; ++d) {
    rb.prepare(1000);
    rb.commit(1000, d, static_cast<std::int64_t>(d));
  }
  EXPECT_EQ(rb.front_since_ms(), 1);
  EXPECT_EQ(rb.shed_front(), 1000u);
  EXPECT_EQ(rb.shed_front(), 1000u);
  EXPECT_EQ(rb.front_dsn(), 3u);
  EXPECT_EQ(rb.counters().drop_memory, 2u);
  rb.sent(500);  // the front is partly sent: never shed
  EXPECT_EQ(rb.shed_front(), 0u);
}

TEST(Memory, LinkBuffersGrowForABurstAndShrinkBackWhenQuiet) {
  tunnel::LinkConfig cfg;
  auto t = Clock::time_point{} + std::chrono::hours(1);
  LinkCore a(cfg, t), b(cfg, t);
  const std::size_t idle_a = a.memory_bytes(), idle_b = b.memory_bytes();
  a.attach(0, tunnel::wire::kVersion, {}, t);
  b.attach(0, tunnel::wire::kVersion, {}, t);
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    a.enqueue(udp4("10.0.0.1", "10.0.0.2", i, 1400), t);
    if (i % 100 == 0) pipe(a, b, t);
  }
  pipe(a, b, t);
  EXPECT_EQ(b.counters().rx_packets, 2000u);
  const std::size_t busy_a = a.memory_bytes(), busy_b = b.memory_bytes();
  EXPECT_GT(busy_a, idle_a + 64 * 1024);  // the replay buffer grew (nothing acked yet)
  EXPECT_GT(busy_b, idle_b + 64 * 1024);  // the receive buffer grew to take whole reads
  // ACKs flow; then the link goes quiet for longer than kTrimAfter.
  for (int k = 0; k < 40; ++k) {
    t += 100ms;
    a.tick(t);
    b.tick(t);
    pipe(b, a, t);
    pipe(a, b, t);
  }
  EXPECT_EQ(a.buffer().frames(), 0u);
  EXPECT_EQ(a.buffer().memory_bytes(), 0u);
  EXPECT_LE(a.memory_bytes(), idle_a + LinkCore::kRxFloor + 4096);
  EXPECT_LE(b.memory_bytes(), idle_b + LinkCore::kRxFloor + 4096);
  // Traffic after the trim grows them again, and nothing is lost.
  for (std::uint64_t i = 2001; i <= 2100; ++i) a.enqueue(udp4("10.0.0.1", "10.0.0.2", i, 1400), t);
  pipe(a, b, t);
  EXPECT_EQ(b.counters().rx_packets, 2100u);
  EXPECT_EQ(b.counters().rx_missing, 0u);
}

TEST(Memory, GatewayOverItsLimitRefusesNewSessionsAndSheds) {
  boost::asio::io_context io;
  MemTun gtun, c1tun, c2tun;
  auto g = test_gateway(gtun);
  g.memory_limit = tunnel::GatewayConfig::kSessionEstimate;  // room for one session
  tunnel::Gateway gw(io, std::move(g));
  gw.start();
  Relay relay(io, gw.local_endpoint());
  tunnel::Client c1(io, test_client(c1tun, relay.endpoint(), "cpe-1", "10.1.0.0/24"));
  c1.start();
  ASSERT_TRUE(run_until(io, [&] { return c1.session().connected(); }, 5s));
  run_for(io, 300ms);  // a tick sums the real memory

  tunnel::Client c2(io, test_client(c2tun, gw.local_endpoint(), "cpe-2", "10.2.0.0/24"));
  c2.start();
  ASSERT_TRUE(run_until(io, [&] { return gw.counters().refused_memory >= 1; }, 5s));
  EXPECT_FALSE(c2.session().connected());
  EXPECT_EQ(gw.find("cpe-2"), nullptr);
  c2.stop();

  // cpe-1's connection is cut; what the gateway gets for it meanwhile fills
  // its replay buffer beyond the limit, and the tick sheds the oldest frames.
  relay.cut(10s);
  ASSERT_TRUE(run_until(io, [&] { return !gw.find("cpe-1")->connected(); }, 3s));
  for (std::uint64_t i = 1; i <= 200; ++i) gtun.inject(udp4("192.0.2.1", "10.1.0.5", i, 1400));
  ASSERT_TRUE(run_until(io, [&] { return gw.find("cpe-1")->replay_counters().drop_memory > 0; }, 3s));
  run_for(io, 300ms);
  EXPECT_LE(gw.memory_bytes(), 2 * tunnel::GatewayConfig::kSessionEstimate + 64 * 1024);
  c1.stop();
  gw.stop();
}

}  // namespace
}  // namespace inproc
