// Handshake messages and proofs, and the gateway's CPE table: pure, no sockets.
#include <tunnel/cpe_table.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/keys.hpp>
#include <tunnel/raw_prefix.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/ip/address.hpp>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {
using namespace tunnel;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t kV = tunnel::wire::kVersion;

struct Exchange {
  hs::Key key = hs::parse_key("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  hs::Nonce sn = hs::random_nonce();
  hs::Hello hello;
  Bytes hello_body;
  Exchange() {
    hello.capabilities = hs::kCapUdpGso;
    hello.nonce = hs::random_nonce();
    hello.resume_session = 0x1122334455667788ull;
    hello.resume_rx_dsn = 4242;
    hello.id = "cpe-7";
    hello.prefixes = {parse_prefix("198.18.10.0/24"), parse_prefix("fd00:10::/64")};
    hello.groups = {"lab", "north.1"};
    hs::encode(hello, kV, hello_body);
    hs::sign_hello(hello_body, kV, key, sn);
  }
};

TEST(Handshake, HelloRoundTripsAndVerifies) {
  Exchange x;
  std::string why;
  auto h = hs::decode_hello(x.hello_body, kV, why);
  ASSERT_TRUE(h) << why;
  EXPECT_EQ(h->id, "cpe-7");
  EXPECT_EQ(h->resume_session, 0x1122334455667788ull);
  EXPECT_EQ(h->resume_rx_dsn, 4242u);
  ASSERT_EQ(h->prefixes.size(), 2u);
  EXPECT_EQ(h->prefixes[1].to_string(), "fd00:10::/64");
  EXPECT_EQ(h->nonce, x.hello.nonce);
  EXPECT_EQ(h->groups, (std::vector<std::string>{"lab", "north.1"}));
  EXPECT_TRUE(hs::verify_hello(x.hello_body, kV, x.key, x.sn));
}

TEST(Handshake, GroupsOnlyInVersion4AndChecked) {
  Exchange x;
  Bytes v3;
  hs::encode(x.hello, 3, v3);  // version 3's layout has no groups: unchanged, and they are not sent
  std::string why;
  auto h3 = hs::decode_hello(v3, 3, why);
  ASSERT_TRUE(h3) << why;
  EXPECT_TRUE(h3->groups.empty());
  EXPECT_EQ(v3.size() + 1 + 1 + (1 + 3) + (1 + 7) + 2, x.hello_body.size());  // version 4 adds the link byte, the groups and the suite
  hs::Hello bad = x.hello;
  bad.groups = {"-dash"};
  Bytes b;
  hs::encode(bad, kV, b);
  EXPECT_FALSE(hs::decode_hello(b, kV, why));
  bad.groups.assign(17, "g");
  b.clear();
  hs::encode(bad, kV, b);
  EXPECT_FALSE(hs::decode_hello(b, kV, why));
  EXPECT_EQ(why, "more than 16 groups");
}

TEST(Handshake, WrongKeyOrOtherNonceOrAnyChangedByteFails) {
  Exchange x;
  const hs::Key other = hs::parse_key("1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(hs::verify_hello(x.hello_body, kV, other, x.sn));
  EXPECT_FALSE(hs::verify_hello(x.hello_body, kV, x.key, hs::random_nonce()));  // replayed on a new connection
  EXPECT_FALSE(hs::verify_hello(x.hello_body, kV, {}, x.sn));                    // no key never verifies
  for (std::size_t i = 0; i < x.hello_body.size(); ++i) {
    Bytes b = x.hello_body;
    b[i] ^= 0x20;
    EXPECT_FALSE(hs::verify_hello(b, kV, x.key, x.sn)) << "byte " << i;
  }
}

TEST(Handshake, HelloAckProofBindsBothNonces) {
  Exchange x;
  hs::HelloAck a{0xabcdefull, 99, true, 1000, "gw-1", {}};
  Bytes body;
  hs::encode(a, kV, body);
  hs::sign_hello_ack(body, kV, x.key, x.hello.nonce, x.sn);
  std::string why;
  auto d = hs::decode_hello_ack(body, kV, why);
  ASSERT_TRUE(d) << why;
  EXPECT_EQ(d->session_id, 0xabcdefull);
  EXPECT_EQ(d->rx_dsn, 99u);
  EXPECT_TRUE(d->resumed);
  EXPECT_EQ(d->gateway_id, "gw-1");
  EXPECT_TRUE(hs::verify_hello_ack(body, kV, x.key, x.hello.nonce, x.sn));
  EXPECT_FALSE(hs::verify_hello_ack(body, kV, x.key, x.sn, x.hello.nonce));  // nonces swapped
  body[3] ^= 1;                                                            // session id changed in flight
  EXPECT_FALSE(hs::verify_hello_ack(body, kV, x.key, x.hello.nonce, x.sn));
}

TEST(Handshake, MalformedBodiesAreRejectedWithAReason) {
  Exchange x;
  std::string why;
  for (std::size_t n = 0; n < x.hello_body.size(); ++n) {
    why.clear();
    EXPECT_FALSE(hs::decode_hello(std::span(x.hello_body).first(n), kV, why)) << n;
    EXPECT_FALSE(why.empty());
  }
  Bytes longer = x.hello_body;
  longer.push_back(0);
  EXPECT_FALSE(hs::decode_hello(longer, kV, why));
  Bytes bad_id = x.hello_body;
  bad_id[4 + 32 + 16 + 1 + 1] = ' ';  // first id byte (after the link byte of version 4)
  EXPECT_FALSE(hs::decode_hello(bad_id, kV, why));
  hs::HelloAck zero{0, 0, false, 0, "gw", {}};
  Bytes zb;
  hs::encode(zero, kV, zb);
  EXPECT_FALSE(hs::decode_hello_ack(zb, kV, why));
  EXPECT_EQ(why, "session id 0");
  EXPECT_FALSE(hs::decode_challenge(Bytes(31), why));
}

// Keys and key files: keys_test.cpp.

// ------------------------------------------------------------ CpeTable

std::vector<Prefix> pfx(std::initializer_list<const char*> l) {
  std::vector<Prefix> v;
  for (auto s : l) v.push_back(parse_prefix(s));
  return v;
}

std::uint64_t route(const CpeTable& t, const char* addr) {
  const auto a = boost::asio::ip::make_address(addr);
  const Session* s = a.is_v4() ? t.route(4, a.to_v4().to_bytes().data()) : t.route(6, a.to_v6().to_bytes().data());
  return s ? reinterpret_cast<std::uintptr_t>(s) / 16 : 0;
}

// route() answers the Session it was given; these tests never dereference it.
Session* fake(std::uintptr_t n) { return reinterpret_cast<Session*>(n * 16); }

TEST(CpeTable, RoutesByLongestPrefixAndChecksSources) {
  CpeTable t(10);
  t.insert(1, "a", pfx({"10.1.0.0/16", "fd00:1::/48"}), fake(1));
  t.insert(2, "b", pfx({"10.2.3.0/24"}), fake(2));
  t.insert(3, "c", pfx({"10.3.0.7/32"}), fake(3));
  EXPECT_EQ(route(t, "10.1.200.9"), 1u);
  EXPECT_EQ(route(t, "10.2.3.255"), 2u);
  EXPECT_EQ(route(t, "10.2.4.1"), 0u);
  EXPECT_EQ(route(t, "10.3.0.7"), 3u);
  EXPECT_EQ(route(t, "10.3.0.8"), 0u);
  EXPECT_EQ(route(t, "fd00:1:0:ffff::1"), 1u);
  EXPECT_EQ(route(t, "fd00:2::1"), 0u);
  t.erase(1);
  EXPECT_EQ(route(t, "10.1.200.9"), 0u);
  EXPECT_EQ(route(t, "10.2.3.1"), 2u);
}

TEST(CpeTable, AdmissionResumesReplacesRefuses) {
  CpeTable t(2);
  auto a = t.admit("a", 0, pfx({"10.1.0.0/16"}), 100);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::create);
  t.insert(100, "a", pfx({"10.1.0.0/16"}), fake(100));
  // The same CPE resuming its session.
  a = t.admit("a", 100, pfx({"10.1.0.0/16"}), 101);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::resume);
  EXPECT_EQ(a.session_id, 100u);
  // The same CPE with a session the gateway does not know: a new one replaces the old.
  a = t.admit("a", 555, pfx({"10.1.0.0/16"}), 102);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::create);
  EXPECT_EQ(a.replaces, 100u);
  // Another CPE claiming an overlapping prefix is refused.
  a = t.admit("b", 0, pfx({"10.1.5.0/24"}), 103);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::reject);
  EXPECT_EQ(a.error, tunnel::Fault::prefix_in_use);
  a = t.admit("b", 0, pfx({"10.0.0.0/8"}), 103);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::reject);
  t.insert(103, "b", pfx({"10.2.0.0/16"}), fake(103));
  // Full: a third CPE is refused, but a known one may still come back.
  a = t.admit("c", 0, pfx({"10.3.0.0/16"}), 104);
  EXPECT_EQ(a.verdict, CpeTable::Verdict::reject);
  EXPECT_EQ(a.error, tunnel::Fault::gateway_full);
  EXPECT_EQ(t.admit("b", 0, pfx({"10.2.0.0/16"}), 105).verdict, CpeTable::Verdict::create);
}

TEST(CpeTable, PacketAddressesFromHeaders) {
  Bytes v4(28, 0);
  v4[0] = 0x45;
  v4[12] = 10, v4[13] = 1, v4[14] = 2, v4[15] = 3;
  v4[16] = 10, v4[17] = 9, v4[18] = 9, v4[19] = 9;
  PacketAddrs a;
  ASSERT_TRUE(packet_addrs(v4, a));
  EXPECT_EQ(a.family, 4);
  EXPECT_EQ(a.src[3], 3);
  EXPECT_EQ(a.dst[1], 9);
  Bytes v6(48, 0);
  v6[0] = 0x60;
  v6[8] = 0xfd, v6[24] = 0xfe;
  ASSERT_TRUE(packet_addrs(v6, a));
  EXPECT_EQ(a.family, 6);
  EXPECT_EQ(a.src[0], 0xfd);
  EXPECT_EQ(a.dst[0], 0xfe);
  EXPECT_FALSE(packet_addrs(Bytes(10, 0x45), a));
  // The session's source check (anti-spoofing) over the same addresses.
  const std::vector<RawPrefix> mine{RawPrefix::from(parse_prefix("10.1.0.0/16"))};
  EXPECT_TRUE(source_in(mine, v4));
  v4[13] = 2;  // 10.2.2.3: another CPE's address
  EXPECT_FALSE(source_in(mine, v4));
  EXPECT_FALSE(source_in(mine, v6));
}


}  // namespace
