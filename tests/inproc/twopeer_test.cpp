// Two whole endpoints in one process (a gateway and one or more CPEs), over
// loopback TCP and in-memory TUNs: the handshake and each refusal, data both
// ways byte for byte, resume after a broken connection, a stalled
// connection, CLOSE, session replacement while attached, a version 3 CPE,
// and a second link joining a session. No root needed; CI also runs this
// under AddressSanitizer and UndefinedBehaviorSanitizer.
#include "harness.hpp"

#include <tunnel/handshake.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <memory>

namespace inproc {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr const char* kCpeAddr = "10.1.0.5";   // inside the CPE's prefix 10.1.0.0/16
constexpr const char* kInetAddr = "192.0.2.9"; // beyond the gateway


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

TEST(TwoPeers, WrongKeyIsRefusedAndNothingIsForwarded) {
  Peers p({}, [](tunnel::ClientConfig& c) { c.key = tunnel::hs::parse_key(kDecoyHex); });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  EXPECT_GE(p.gw->counters().auth_failures, 1u);
  p.ctun.inject(udp4(kCpeAddr, kInetAddr, 1));
  run_for(p.io, 100ms);
  std::vector<Bytes> up;
  p.gtun.drain(up);
  EXPECT_TRUE(up.empty());
}

TEST(TwoPeers, UnknownIdGetsTheSameAnswerAsAWrongProof) {
  Peers p([](tunnel::GatewayConfig& g) {
    auto keys = std::make_shared<tunnel::hs::KeyTable>();
    keys->by_id.emplace("someone-else", tunnel::keys::Binding{tunnel::hs::parse_key(kKeyHex), {}, false, {}, false});
    keys->decoy = tunnel::hs::parse_key(kDecoyHex);
    g.keys = keys;
  });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_GE(p.gw->counters().auth_failures, 1u);
}

TEST(TwoPeers, APrefixOutsideTheKeyFilesBindingIsRefused) {
  Peers p([](tunnel::GatewayConfig& g) {
    auto keys = std::make_shared<tunnel::hs::KeyTable>();
    keys->by_id.emplace("cpe-1", tunnel::keys::Binding{tunnel::hs::parse_key(kKeyHex),
                                                       {tunnel::parse_prefix("10.9.0.0/16")}, true, {}, false});
    keys->decoy = tunnel::hs::parse_key(kDecoyHex);
    g.keys = keys;
    g.allow_unbound_prefixes = false;
  });  // the CPE claims 10.1.0.0/16
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  p.ctun.inject(udp4(kCpeAddr, kInetAddr, 1));
  run_for(p.io, 100ms);
  std::vector<Bytes> up;
  p.gtun.drain(up);
  EXPECT_TRUE(up.empty());
  EXPECT_GE(p.gw->counters().handshake_failures, 1u);
}

// A key table with one id, cpe-1, whose line binds its groups (groups=) and no prefixes.
std::shared_ptr<tunnel::hs::KeyTable> groups_table(std::vector<std::string> groups) {
  auto keys = std::make_shared<tunnel::hs::KeyTable>();
  tunnel::keys::Binding b;
  b.key = tunnel::hs::parse_key(kKeyHex);
  b.groups = std::move(groups);
  b.groups_bound = true;
  keys->by_id.emplace("cpe-1", std::move(b));
  keys->decoy = tunnel::hs::parse_key(kDecoyHex);
  return keys;
}

// Keeps what is logged while it lives.
struct LogCapture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  LogCapture() { spdlog::default_logger()->sinks().push_back(sink); }
  ~LogCapture() { spdlog::default_logger()->sinks().pop_back(); }
  bool saw(std::string_view text) const {
    for (const auto& l : sink->last_formatted())
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

TEST(TwoPeers, AGroupOutsideTheKeyFilesBindingIsRefused) {
  LogCapture log;
  Peers p([](tunnel::GatewayConfig& g) { g.keys = groups_table({"lab"}); },
          [](tunnel::ClientConfig& c) { c.groups = {"lab", "north"}; });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  EXPECT_GE(p.gw->counters().handshake_failures, 1u);
  EXPECT_TRUE(log.saw("refused by the gateway: group not allowed"));  // the CPE's log: the ERROR it got
}

TEST(TwoPeers, BoundGroupsAreAdmittedAndAReloadThatDropsOneClosesTheSession) {
  Peers p([](tunnel::GatewayConfig& g) { g.keys = groups_table({"lab", "north"}); },
          [](tunnel::ClientConfig& c) { c.groups = {"north"}; });
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  EXPECT_EQ(p.gs().groups, (std::vector<std::string>{"north"}));
  EXPECT_EQ(p.gw->replace_keys(groups_table({"lab", "north", "south"})), 0u);
  EXPECT_EQ(p.gw->replace_keys(groups_table({"lab"})), 1u);  // SIGHUP with a narrower binding
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  run_for(p.io, 300ms);
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);  // and the CPE's next HELLO is refused
}

TEST(TwoPeers, AnUnboundIdMayNotClaimPrefixesUnlessAllowed) {
  Peers p([](tunnel::GatewayConfig& g) { g.allow_unbound_prefixes = false; });  // the any-id key binds nothing
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
}

TEST(TwoPeers, OverlappingPrefixAndAFullGatewayAreRefused) {
  Peers p([](tunnel::GatewayConfig& g) { g.max_cpes = 2; });
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  MemTun t2, t3, t4;
  tunnel::Client overlap(p.io, test_client(t2, p.gw->local_endpoint(), "cpe-2", "10.1.7.0/24"));
  overlap.start();
  run_for(p.io, 400ms);
  EXPECT_FALSE(overlap.session().connected());
  EXPECT_EQ(p.gw->find("cpe-2"), nullptr);
  tunnel::Client second(p.io, test_client(t3, p.gw->local_endpoint(), "cpe-3", "10.3.0.0/16"));
  second.start();
  ASSERT_TRUE(run_until(p.io, [&] { return second.session().connected(); }, 3000ms));
  tunnel::Client third(p.io, test_client(t4, p.gw->local_endpoint(), "cpe-4", "10.4.0.0/16"));
  third.start();
  run_for(p.io, 400ms);
  EXPECT_FALSE(third.session().connected());
  EXPECT_EQ(p.gw->find("cpe-4"), nullptr);
  EXPECT_GE(p.gw->counters().handshake_failures, 2u);
  overlap.stop();
  second.stop();
  third.stop();
}

// A raw connection: reads the CHALLENGE, then sends `hello` bytes as they are.
std::string raw_handshake(Peers& p, const Bytes& send) {
  tcp::socket s(p.io);
  s.connect(p.gw->local_endpoint());
  if (!send.empty()) asio::write(s, asio::buffer(send));
  std::string got;
  std::array<std::uint8_t, 512> buf;
  s.non_blocking(true);
  run_until(p.io, [&] {
    boost::system::error_code ec;
    const auto n = s.read_some(asio::buffer(buf), ec);
    if (n) got.append(reinterpret_cast<const char*>(buf.data()), n);
    return ec && ec != asio::error::would_block;
  }, 3000ms);
  return got;
}

TEST(TwoPeers, MalformedHelloBadVersionAndTimeoutAreRefused) {
  Peers p([](tunnel::GatewayConfig& g) { g.handshake_timeout = 300ms; }, [](tunnel::ClientConfig& c) { c.id = "x"; });
  // A HELLO whose body is garbage: ERROR "malformed hello".
  Bytes bad(tunnel::wire::kHeaderSize + 10, 0xee);
  tunnel::wire::encode_header(bad.data(), tunnel::wire::FrameType::hello, 0, 10);
  EXPECT_NE(raw_handshake(p, bad).find("malformed hello"), std::string::npos);
  // A version this gateway does not speak: ERROR "unsupported version".
  Bytes v9 = bad;
  v9[0] = 9;
  EXPECT_NE(raw_handshake(p, v9).find("unsupported version"), std::string::npos);
  // Nothing at all: closed after the handshake timeout, counted.
  raw_handshake(p, {});
  EXPECT_GE(p.gw->counters().handshake_timeouts, 1u);
  EXPECT_EQ(p.gw->pending(), 0u);
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
