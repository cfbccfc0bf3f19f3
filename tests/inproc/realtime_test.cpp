// Traffic classes through two whole endpoints in one process: realtime
// packets (DSCP EF here) ride every realtime link at once and arrive once;
// bulk stays on the bulk link; losing a realtime link loses nothing.
#include "harness.hpp"

#include <gtest/gtest.h>

namespace inproc {
namespace {
namespace asio = boost::asio;

constexpr std::uint8_t kEf = 0xb8;

struct Rt {
  asio::io_context io;
  MemTun gtun, ctun;
  std::unique_ptr<tunnel::Gateway> gw;
  std::unique_ptr<tunnel::Client> cpe;
  explicit Rt(unsigned links = 3) {
    gw = std::make_unique<tunnel::Gateway>(io, test_gateway(gtun));
    gw->start();
    auto c = test_client(ctun, gw->local_endpoint(), "cpe-1", "10.1.0.0/16");
    c.links = links;  // link 0 bulk, the others realtime (as a CPE's per-path links are)
    cpe = std::make_unique<tunnel::Client>(io, std::move(c));
    cpe->start();
  }
  ~Rt() {
    cpe->stop();
    gw->stop();
    run_for(io, 50ms);
  }
  const tunnel::Session* gs() const { return gw->find("cpe-1"); }
  bool all_up(unsigned links) {
    auto* s = gs();
    if (!s) return false;
    for (unsigned i = 0; i < links; ++i)
      if (!s->find_link(i) || !s->find_link(i)->connected() || !cpe->session().link(i).connected()) return false;
    return true;
  }
};

std::vector<std::uint64_t> seqs(const std::vector<Bytes>& v) {
  std::vector<std::uint64_t> s;
  for (const auto& p : v) s.push_back(seq_of(p));
  return s;
}

std::vector<std::uint64_t> iota(std::uint64_t n) {
  std::vector<std::uint64_t> s;
  for (std::uint64_t i = 1; i <= n; ++i) s.push_back(i);
  return s;
}

TEST(Realtime, MarkedPacketsRideEveryRealtimeLinkAndArriveOnce) {
  Rt t;
  ASSERT_TRUE(run_until(t.io, [&] { return t.all_up(3); }, 3000ms));
  std::vector<Bytes> up, down;
  for (std::uint64_t i = 1; i <= 200; ++i) {
    t.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 160, kEf));
    t.gtun.inject(udp4(kInetAddr, kCpeAddr, i, 160, kEf));
    if (i % 10 == 0) run_for(t.io, 2ms);
  }
  ASSERT_TRUE(run_until(t.io, [&] {
    t.gtun.drain(up);
    t.ctun.drain(down);
    return up.size() >= 200 && down.size() >= 200;
  }, 3000ms));
  run_for(t.io, 50ms);
  t.gtun.drain(up);
  t.ctun.drain(down);
  EXPECT_EQ(seqs(up), iota(200));
  EXPECT_EQ(seqs(down), iota(200));
  EXPECT_EQ(up[0], udp4(kCpeAddr, kInetAddr, 1, 160, kEf));  // byte for byte
  // Both realtime links carried each packet; the second copies were dropped.
  EXPECT_EQ(t.gs()->counters().rx_rt_copies, 200u);
  EXPECT_EQ(t.cpe->session().counters().rx_rt_copies, 200u);
  EXPECT_EQ(t.gs()->counters().rx_duplicates, 0u);
  EXPECT_EQ(t.gs()->find_link(0)->core().rx_last(), 0u);  // none on the bulk link
}

TEST(Realtime, BulkStaysOnTheBulkLink) {
  Rt t;
  ASSERT_TRUE(run_until(t.io, [&] { return t.all_up(3); }, 3000ms));
  std::vector<Bytes> up;
  for (std::uint64_t i = 1; i <= 300; ++i) {
    t.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 1200));  // large, unmarked: bulk
    if (i % 20 == 0) run_for(t.io, 1ms);
  }
  ASSERT_TRUE(run_until(t.io, [&] { t.gtun.drain(up); return up.size() >= 300; }, 3000ms));
  EXPECT_EQ(seqs(up), iota(300));
  EXPECT_EQ(t.gs()->find_link(0)->core().rx_last(), 300u);
  EXPECT_EQ(t.gs()->counters().rx_rt_copies, 0u);
}

TEST(Realtime, LosingARealtimeLinkLosesNothing) {
  Rt t;
  ASSERT_TRUE(run_until(t.io, [&] { return t.all_up(3); }, 3000ms));
  std::vector<Bytes> up;
  for (std::uint64_t i = 1; i <= 400; ++i) {
    t.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 160, kEf));
    if (i == 150) t.cpe->session().link(1).abort(tunnel::Fault::peer_disconnected);  // a path's link dies
    if (i % 10 == 0) run_for(t.io, 2ms);
  }
  ASSERT_TRUE(run_until(t.io, [&] { t.gtun.drain(up); return up.size() >= 400; }, 3000ms)) << up.size();
  EXPECT_EQ(seqs(up), iota(400));
}

TEST(Realtime, WithoutRealtimeLinksEverythingRidesTheBulkLink) {
  Rt t(1);
  ASSERT_TRUE(run_until(t.io, [&] { return t.all_up(1); }, 3000ms));
  std::vector<Bytes> up;
  for (std::uint64_t i = 1; i <= 100; ++i) t.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 160, kEf));
  ASSERT_TRUE(run_until(t.io, [&] { t.gtun.drain(up); return up.size() >= 100; }, 3000ms));
  EXPECT_EQ(seqs(up), iota(100));
  EXPECT_EQ(t.gs()->find_link(0)->core().rx_last(), 100u);
}

}  // namespace
}  // namespace inproc
