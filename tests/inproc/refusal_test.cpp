// Each refusal of the gateway's handshake (docs/protocol.md, "Refusals"),
// checked by the reason its ERROR carries: a real CPE's refusals through
// the reason it logs ("refused by the gateway: REASON"), and the ones no
// real CPE sends (garbage, a foreign session, a downgraded version) through
// a hand-written connection (raw_cpe.hpp) that reads the ERROR itself.
#include "harness.hpp"
#include "raw_cpe.hpp"

#include <tunnel/handshake.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace inproc {
namespace {
namespace hs = tunnel::hs;
namespace wire = tunnel::wire;

// True when the CPE logged that the gateway refused it with exactly `reason`.
bool refused_with(const LogCapture& log, const std::string& reason) {
  return log.count("refused by the gateway: " + reason + ")") > 0;
}

std::uint64_t proto_errors(const tunnel::Gateway& gw, wire::ParseStatus s) {
  return gw.counters().proto_errors[static_cast<std::size_t>(s)];
}

TEST(Refusals, WrongKeyIsRefusedAndNothingIsForwarded) {
  LogCapture log;
  Peers p({}, [](tunnel::ClientConfig& c) { c.key = hs::parse_key(kDecoyHex); });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  EXPECT_GE(p.gw->counters().auth_failures, 1u);
  EXPECT_TRUE(refused_with(log, "authentication failed")) << log.text();
  p.ctun.inject(udp4(kCpeAddr, kInetAddr, 1));
  run_for(p.io, 100ms);
  std::vector<Bytes> up;
  p.gtun.drain(up);
  EXPECT_TRUE(up.empty());
}

TEST(Refusals, UnknownIdGetsTheSameAnswerAsAWrongProof) {
  LogCapture log;
  Peers p([](tunnel::GatewayConfig& g) {
    auto keys = std::make_shared<hs::KeyTable>();
    keys->by_id.emplace("someone-else", tunnel::keys::Binding{hs::parse_key(kKeyHex), {}, false, {}, false});
    keys->decoy = hs::parse_key(kDecoyHex);
    g.keys = keys;
  });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_GE(p.gw->counters().auth_failures, 1u);
  EXPECT_TRUE(refused_with(log, "authentication failed")) << log.text();
}

TEST(Refusals, APrefixOutsideTheKeyFilesBindingIsRefused) {
  LogCapture log;
  Peers p([](tunnel::GatewayConfig& g) {
    auto keys = std::make_shared<hs::KeyTable>();
    keys->by_id.emplace("cpe-1", tunnel::keys::Binding{hs::parse_key(kKeyHex),
                                                       {tunnel::parse_prefix("10.9.0.0/16")}, true, {}, false});
    keys->decoy = hs::parse_key(kDecoyHex);
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
  EXPECT_EQ(p.gw->counters().auth_failures, 0u);
  EXPECT_TRUE(refused_with(log, "prefix not allowed")) << log.text();
}

TEST(Refusals, AnUnboundIdMayNotClaimPrefixesUnlessAllowed) {
  LogCapture log;
  Peers p([](tunnel::GatewayConfig& g) { g.allow_unbound_prefixes = false; });  // the any-id key binds nothing
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_TRUE(refused_with(log, "prefix not allowed")) << log.text();
}

TEST(Refusals, OverlappingPrefixAndAFullGatewayAreRefused) {
  Peers p([](tunnel::GatewayConfig& g) { g.max_cpes = 2; });
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  MemTun t2, t3, t4;
  {
    LogCapture log;
    tunnel::Client overlap(p.io, test_client(t2, p.gw->local_endpoint(), "cpe-2", "10.1.7.0/24"));
    overlap.start();
    run_for(p.io, 400ms);
    EXPECT_FALSE(overlap.session().connected());
    EXPECT_EQ(p.gw->find("cpe-2"), nullptr);
    EXPECT_TRUE(refused_with(log, "prefix in use by another CPE")) << log.text();
    overlap.stop();
    run_for(p.io, 20ms);
  }
  tunnel::Client second(p.io, test_client(t3, p.gw->local_endpoint(), "cpe-3", "10.3.0.0/16"));
  second.start();
  ASSERT_TRUE(run_until(p.io, [&] { return second.session().connected(); }, 3000ms));
  LogCapture log;
  tunnel::Client third(p.io, test_client(t4, p.gw->local_endpoint(), "cpe-4", "10.4.0.0/16"));
  third.start();
  run_for(p.io, 400ms);
  EXPECT_FALSE(third.session().connected());
  EXPECT_EQ(p.gw->find("cpe-4"), nullptr);
  EXPECT_GE(p.gw->counters().handshake_failures, 2u);
  EXPECT_TRUE(refused_with(log, "gateway full")) << log.text();
  EXPECT_EQ(p.gw->counters().refused_memory, 0u);  // full by --max-cpes, not by memory
  second.stop();
  third.stop();
  run_for(p.io, 50ms);  // their handlers run before they are freed
}

TEST(Refusals, MalformedHelloBadVersionAndTimeoutAreRefused) {
  Peers p([](tunnel::GatewayConfig& g) { g.handshake_timeout = 300ms; }, [](tunnel::ClientConfig& c) { c.id = "x"; });
  // A HELLO whose body is garbage.
  Bytes bad(wire::kHeaderSize + 10, 0xee);
  wire::encode_header(bad.data(), wire::FrameType::hello, 0, 10);
  {
    RawCpe r(p.io, p.gw->local_endpoint());
    r.send(bad);
    EXPECT_EQ(r.refusal(), "malformed hello");
  }
  // A version this gateway does not speak: refused at the frame header, counted.
  Bytes v9 = bad;
  v9[0] = 9;
  {
    RawCpe r(p.io, p.gw->local_endpoint());
    r.send(v9);
    std::uint8_t version = 0;
    EXPECT_EQ(r.refusal(&version), "unsupported version");
    EXPECT_EQ(version, wire::kMinVersion);  // a first frame that does not parse is answered in version 3
  }
  EXPECT_EQ(proto_errors(*p.gw, wire::ParseStatus::bad_version), 1u);
  // Nothing at all: closed after the handshake timeout without ERROR, counted.
  {
    RawCpe r(p.io, p.gw->local_endpoint());
    EXPECT_EQ(r.refusal(), std::nullopt);
  }
  EXPECT_GE(p.gw->counters().handshake_timeouts, 1u);
  EXPECT_EQ(p.gw->pending(), 0u);
}

// A join (link > 0) must name the session this id holds on the gateway.
TEST(Refusals, AJoinNamingAnAbsentOrAnotherCpesSessionIsAnUnknownSession) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  const std::uint64_t sid = p.gs().id();
  const auto failures0 = p.gw->counters().handshake_failures;
  const auto key = hs::parse_key(kKeyHex);
  {  // a session the gateway does not hold
    RawCpe r(p.io, p.gw->local_endpoint());
    ASSERT_TRUE(r.challenge());
    auto h = RawCpe::hello_for("cpe-1", "10.1.0.0/16");
    h.link = 1;
    h.resume_session = sid + 1;
    r.hello(h, wire::kVersion, key);
    EXPECT_EQ(r.refusal(), "unknown session");
  }
  {  // cpe-1's session, named by another id (the any-id key lets cpe-2 in)
    RawCpe r(p.io, p.gw->local_endpoint());
    ASSERT_TRUE(r.challenge());
    auto h = RawCpe::hello_for("cpe-2", "10.2.0.0/16");
    h.link = 1;
    h.resume_session = sid;
    r.hello(h, wire::kVersion, key);
    EXPECT_EQ(r.refusal(), "unknown session");
  }
  EXPECT_EQ(p.gw->counters().handshake_failures, failures0 + 2);
  EXPECT_EQ(p.gw->counters().auth_failures, 0u);
  EXPECT_EQ(p.gs().find_link(1), nullptr);  // no link joined
  {  // the same join by cpe-1 itself is taken
    RawCpe r(p.io, p.gw->local_endpoint());
    ASSERT_TRUE(r.challenge());
    auto h = RawCpe::hello_for("cpe-1", "10.1.0.0/16");
    h.link = 1;
    h.resume_session = sid;
    r.hello(h, wire::kVersion, key);
    const auto ack = r.next();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type, wire::FrameType::hello_ack);
  }
  EXPECT_TRUE(p.connected());
  EXPECT_EQ(p.gs().id(), sid);  // the CPE's session went on untouched
}

// A CPE that speaks a newer version than the CHALLENGE offered says so
// (capability bit 1, under its proof): when the gateway did offer newer,
// someone altered the CHALLENGE, and the gateway refuses.
TEST(Refusals, ADowngradedHandshakeIsRefused) {
  Peers p;
  const auto key = hs::parse_key(kKeyHex);
  const auto failures0 = p.gw->counters().handshake_failures;
  {
    RawCpe r(p.io, p.gw->local_endpoint());
    const auto ch = r.challenge();
    ASSERT_TRUE(ch);
    ASSERT_EQ(ch->max_version, wire::kVersion);  // version 4 was offered...
    auto h = RawCpe::hello_for("cpe-2", "10.2.0.0/16");
    h.capabilities = hs::kCapNewerVersion;  // ...yet the CPE says it chose 3 for want of newer
    r.hello(h, 3, key);
    std::uint8_t version = 0;
    EXPECT_EQ(r.refusal(&version), "unsupported version");
    EXPECT_EQ(version, 3);
  }
  EXPECT_EQ(p.gw->counters().handshake_failures, failures0 + 1);
  EXPECT_EQ(proto_errors(*p.gw, wire::ParseStatus::bad_version), 0u);  // not the frame header's refusal
  EXPECT_EQ(p.gw->find("cpe-2"), nullptr);
  {  // a version 3 CPE, which knows no newer, is served
    RawCpe r(p.io, p.gw->local_endpoint());
    ASSERT_TRUE(r.challenge());
    r.hello(RawCpe::hello_for("cpe-3", "10.3.0.0/16"), 3, key);
    const auto ack = r.next();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type, wire::FrameType::hello_ack);
  }
  {  // and so is a CPE newer than the gateway that speaks the newest offered
    RawCpe r(p.io, p.gw->local_endpoint());
    ASSERT_TRUE(r.challenge());
    auto h = RawCpe::hello_for("cpe-4", "10.4.0.0/16");
    h.capabilities = hs::kCapNewerVersion;
    r.hello(h, wire::kVersion, key);
    const auto ack = r.next();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type, wire::FrameType::hello_ack);
  }
  EXPECT_EQ(p.gw->counters().handshake_failures, failures0 + 1);
}

// A key table with one id, cpe-1, whose line binds its groups (groups=) and no prefixes.
std::shared_ptr<hs::KeyTable> groups_table(std::vector<std::string> groups) {
  auto keys = std::make_shared<hs::KeyTable>();
  tunnel::keys::Binding b;
  b.key = hs::parse_key(kKeyHex);
  b.groups = std::move(groups);
  b.groups_bound = true;
  keys->by_id.emplace("cpe-1", std::move(b));
  keys->decoy = hs::parse_key(kDecoyHex);
  return keys;
}

TEST(Refusals, AGroupOutsideTheKeyFilesBindingIsRefused) {
  LogCapture log;
  Peers p([](tunnel::GatewayConfig& g) { g.keys = groups_table({"lab"}); },
          [](tunnel::ClientConfig& c) { c.groups = {"lab", "north"}; });
  run_for(p.io, 600ms);
  EXPECT_FALSE(p.cpe->session().connected());
  EXPECT_EQ(p.gw->find("cpe-1"), nullptr);
  EXPECT_GE(p.gw->counters().handshake_failures, 1u);
  EXPECT_TRUE(refused_with(log, "group not allowed")) << log.text();
}

TEST(Refusals, BoundGroupsAreAdmittedAndAReloadThatDropsOneClosesTheSession) {
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

}  // namespace
}  // namespace inproc
