// Two whole endpoints in one process (a gateway and one or more CPEs), over
// loopback TCP and in-memory TUNs: the handshake (its refusals:
// refusal_test.cpp), data both ways byte for byte, resume after a broken
// connection, a stalled connection, CLOSE either way, session replacement
// while attached, a version 3 CPE, and a second link joining a session. No
// root needed; CI also runs this under AddressSanitizer and
// UndefinedBehaviorSanitizer.
#include "harness.hpp"

#include <tunnel/handshake.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace inproc {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Sends n packets each way (seq from `from`), returns what arrived.
void exchange(Peers& p, std::uint64_t from, std::uint64_t n, std::vector<Bytes>& up, std::vector<Bytes>& down) {
  for (std::uint64_t i = from; i < from + n; ++i) {
    p.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 20 + i % 1400));
    p.gtun.inject(udp4(kInetAddr, kCpeAddr, i, 20 + (i * 7) % 1400));
  }
  run_until(p.io, [&] {
    p.gtun.drain(up);
    p.ctun.drain(down);
    return up.size() >= n && down.size() >= n;
  }, 5000ms);
}

TEST(TwoPeers, HandshakeThenDataBothWaysByteForByte) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  EXPECT_EQ(p.cpe->version(), tunnel::wire::kVersion);
  EXPECT_EQ(p.cpe->gateway_id(), "gw-test");
  std::vector<Bytes> up, down;
  exchange(p, 1, 500, up, down);
  ASSERT_EQ(up.size(), 500u);
  ASSERT_EQ(down.size(), 500u);
  for (std::uint64_t i = 0; i < 500; ++i) {
    EXPECT_EQ(up[i], udp4(kCpeAddr, kInetAddr, i + 1, 20 + (i + 1) % 1400)) << i;
    EXPECT_EQ(down[i], udp4(kInetAddr, kCpeAddr, i + 1, 20 + ((i + 1) * 7) % 1400)) << i;
  }
}

TEST(TwoPeers, SpoofedSourceIsDroppedAtTheGateway) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  p.ctun.inject(udp4("10.2.0.1", kInetAddr, 1));  // not the CPE's prefix
  p.ctun.inject(udp4(kCpeAddr, kInetAddr, 2));
  std::vector<Bytes> up;
  run_until(p.io, [&] { p.gtun.drain(up); return !up.empty(); }, 2000ms);
  run_for(p.io, 100ms);
  p.gtun.drain(up);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(seq_of(up[0]), 2u);
  EXPECT_EQ(p.gw->find("cpe-1")->counters().drop_spoofed, 1u);
}

TEST(TwoPeers, ABrokenConnectionResumesWithNothingLostOrDuplicated) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  std::vector<Bytes> up, down;
  const std::uint64_t n = 3000;
  for (std::uint64_t i = 1; i <= n; ++i) {
    p.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 200));
    p.gtun.inject(udp4(kInetAddr, kCpeAddr, i, 200));
    if (i % 50 == 0) run_for(p.io, 2ms);
    if (i == n / 3) p.relay->cut(300ms);  // both ends see a reset; reconnects are refused for a while
    p.gtun.drain(up);
    p.ctun.drain(down);
  }
  ASSERT_TRUE(run_until(p.io, [&] {
    p.gtun.drain(up);
    p.ctun.drain(down);
    return up.size() >= n && down.size() >= n;
  }, 8000ms)) << up.size() << " " << down.size();
  run_for(p.io, 100ms);
  p.gtun.drain(up);
  p.ctun.drain(down);
  ASSERT_EQ(up.size(), n);
  ASSERT_EQ(down.size(), n);
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(seq_of(up[i]), i + 1);
    EXPECT_EQ(seq_of(down[i]), i + 1);
  }
  EXPECT_GE(p.cpe->session().counters().resumes, 1u);
  EXPECT_GE(p.relay->connections(), 2u);
  EXPECT_EQ(p.gw->counters().sessions_created, 1u);  // resumed, not replaced
}

TEST(TwoPeers, AStalledConnectionKeepsPacketsAndResumes) {
  Peers p({}, [](tunnel::ClientConfig& c) { c.node.link.send_queue_bytes = 16 * 1024; });
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  p.relay->stall(true);  // bytes stop moving, nothing is closed
  const std::uint64_t n = 600;
  for (std::uint64_t i = 1; i <= n; ++i) {
    p.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 400));
    if (i % 20 == 0) run_for(p.io, 10ms);
  }
  run_for(p.io, 300ms);
  p.relay->stall(false);
  p.relay->cut();  // the held bytes are thrown away with the connection; resume replays them
  std::vector<Bytes> up;
  ASSERT_TRUE(run_until(p.io, [&] { p.gtun.drain(up); return up.size() >= n; }, 8000ms)) << up.size();
  for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(seq_of(up[i]), i + 1);
  EXPECT_EQ(p.cpe->session().counters().drop_queue_full, 0u);
}

TEST(TwoPeers, CloseEndsTheSessionOnTheGateway) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  p.cpe->stop();
  ASSERT_TRUE(run_until(p.io, [&] { return p.gw->find("cpe-1") == nullptr; }, 2000ms));
  EXPECT_EQ(p.gw->counters().sessions_closed, 1u);
  p.cpe.reset();
}

// The gateway's CLOSE reaches the CPE: what the CPE had buffered for that
// session is dropped (counted), and it starts a new session. Its packets are
// held in the relay meanwhile, so that they are still buffered (unacknowledged)
// when the CLOSE arrives; the dead interval is long enough not to end the
// connection first.
struct ClosedByTheGateway : Peers {
  static constexpr std::uint64_t kHeld = 50;
  std::uint64_t old_id = 0;
  ClosedByTheGateway()
      : Peers([](tunnel::GatewayConfig& g) { g.node.link.dead_interval = 3000ms; },
              [](tunnel::ClientConfig& c) { c.node.link.dead_interval = 3000ms; }) {}
  // Connects, then leaves kHeld packets buffered on the CPE.
  void hold_packets() {
    ASSERT_TRUE(run_until(io, [&] { return connected(); }, 3000ms));
    old_id = cpe->session().id();
    relay->stall_to_target(true);
    for (std::uint64_t i = 1; i <= kHeld; ++i) ctun.inject(udp4(kCpeAddr, kInetAddr, i));
    ASSERT_TRUE(run_until(io, [&] { return cpe->session().buffered_packets() >= kHeld; }, 2000ms));
  }
  // The CPE heard the CLOSE: its session is gone and its buffer dropped, counted.
  void expect_closed() {
    ASSERT_TRUE(run_until(io, [&] { return cpe->client_counters().sessions_closed >= 1; }, 2000ms));
    EXPECT_EQ(cpe->client_counters().sessions_closed, 1u);
    EXPECT_EQ(cpe->session().id(), 0u);
    EXPECT_EQ(cpe->session().buffered_packets(), 0u);
    EXPECT_EQ(cpe->session().replay_counters().drop_cleared, kHeld);
  }
  // Connected again in a new session, which carries new packets both ways
  // and none of the dropped ones.
  void expect_new_session(std::uint64_t sessions_before) {
    relay->stall_to_target(false);
    ASSERT_TRUE(run_until(io, [&] { return connected(); }, 5000ms));
    EXPECT_NE(cpe->session().id(), 0u);
    EXPECT_NE(cpe->session().id(), old_id);
    EXPECT_EQ(gs().id(), cpe->session().id());
    EXPECT_EQ(gw->counters().sessions_created, sessions_before + 1);
    std::vector<Bytes> up, down;
    exchange(*this, kHeld + 1, 20, up, down);
    ASSERT_EQ(up.size(), 20u);
    ASSERT_EQ(down.size(), 20u);
    for (std::uint64_t i = 0; i < 20; ++i) {
      EXPECT_EQ(seq_of(up[i]), kHeld + 1 + i);
      EXPECT_EQ(seq_of(down[i]), kHeld + 1 + i);
    }
  }
};

TEST(TwoPeers, ASessionReplacedByTheSameIdIsClosedAndTheCpeStartsANewOne) {
  ClosedByTheGateway p;
  ASSERT_NO_FATAL_FAILURE(p.hold_packets());
  // Another CPE under the same id starts a new session: the gateway destroys
  // the old one, sending CLOSE.
  MemTun t2;
  tunnel::Client twin(p.io, test_client(t2, p.gw->local_endpoint(), "cpe-1", "10.1.0.0/16"));
  twin.start();
  ASSERT_NO_FATAL_FAILURE(p.expect_closed());
  EXPECT_EQ(p.gw->counters().sessions_replaced, 1u);
  // The twin leaves (its CLOSE ends its session) before the CPE's packets
  // reach the gateway again: the CPE's next handshake is held in the relay.
  ASSERT_TRUE(run_until(p.io, [&] { return twin.session().connected(); }, 2000ms));
  twin.stop();
  ASSERT_TRUE(run_until(p.io, [&] { return p.gw->find("cpe-1") == nullptr; }, 2000ms));
  p.expect_new_session(2);
  run_for(p.io, 50ms);
}

TEST(TwoPeers, AStoppingGatewayClosesTheSessionAndTheCpeStartsANewOneWithTheNext) {
  ClosedByTheGateway p;
  ASSERT_NO_FATAL_FAILURE(p.hold_packets());
  const auto where = p.gw->local_endpoint();
  p.gw->stop();
  ASSERT_NO_FATAL_FAILURE(p.expect_closed());
  run_for(p.io, 50ms);
  // A new gateway on the same address (its session table empty).
  auto g = test_gateway(p.gtun);
  g.listen = {where};
  g.node.link.dead_interval = 3000ms;
  p.gw = std::make_unique<tunnel::Gateway>(p.io, std::move(g));
  p.gw->start();
  p.expect_new_session(0);
}

TEST(TwoPeers, SessionsReplacedWhileAttachedAreFreedSafely) {
  asio::io_context io;
  MemTun gtun;
  tunnel::Gateway gw(io, test_gateway(gtun));
  gw.start();
  constexpr int kCpes = 20;
  std::vector<std::unique_ptr<MemTun>> tuns;
  std::vector<std::unique_ptr<tunnel::Client>> old, fresh;
  for (int round = 0; round < 2; ++round) {
    auto& v = round ? fresh : old;
    for (int i = 0; i < kCpes; ++i) {
      tuns.push_back(std::make_unique<MemTun>());
      const std::string prefix = "10." + std::to_string(10 + i) + ".0.0/16";
      v.push_back(std::make_unique<tunnel::Client>(
          io, test_client(*tuns.back(), gw.local_endpoint(), "cpe-" + std::to_string(i), prefix.c_str())));
      v.back()->start();
    }
    ASSERT_TRUE(run_until(io, [&] {
      return std::all_of(v.begin(), v.end(), [](auto& c) { return c->session().connected(); });
    }, 5000ms));
  }
  // Every old session was replaced while its connection was still attached.
  EXPECT_EQ(gw.counters().sessions_replaced, static_cast<std::uint64_t>(kCpes));
  for (int i = 0; i < kCpes; ++i)
    EXPECT_EQ(gw.find("cpe-" + std::to_string(i))->id(), fresh[static_cast<std::size_t>(i)]->session().id());
  for (auto& c : old) c->stop();
  for (auto& c : fresh) c->stop();
  gw.stop();
  run_for(io, 100ms);
}

TEST(TwoPeers, AVersion3CpeIsServedByAVersion4Gateway) {
  Peers p({}, [](tunnel::ClientConfig& c) { c.max_version = 3; });
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  EXPECT_EQ(p.cpe->version(), 3);
  EXPECT_EQ(p.cpe->gateway_id(), "");  // version 3's HELLO_ACK has no gateway id
  std::vector<Bytes> up, down;
  exchange(p, 1, 200, up, down);
  EXPECT_EQ(up.size(), 200u);
  EXPECT_EQ(down.size(), 200u);
}

TEST(TwoPeers, ASecondLinkJoinsTheSession) {
  Peers p({}, [](tunnel::ClientConfig& c) { c.links = 2; });
  ASSERT_TRUE(run_until(p.io, [&] {
    auto* s = p.gw->find("cpe-1");
    return p.connected() && s && s->find_link(1) && s->find_link(1)->connected();
  }, 3000ms));
  // Packets on link 1 are a stream of their own (sequence numbers from 1).
  auto& l1 = p.cpe->session().link(1);
  for (std::uint64_t i = 1; i <= 50; ++i) l1.enqueue(udp4(kCpeAddr, kInetAddr, i), std::chrono::steady_clock::now());
  l1.flush();
  std::vector<Bytes> up;
  ASSERT_TRUE(run_until(p.io, [&] { p.gtun.drain(up); return up.size() >= 50; }, 2000ms));
  EXPECT_EQ(p.gw->find("cpe-1")->find_link(1)->core().rx_last(), 50u);
  EXPECT_EQ(p.gw->find("cpe-1")->find_link(0)->core().rx_last(), 0u);
}

}  // namespace
}  // namespace inproc
