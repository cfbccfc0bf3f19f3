// Frame protection end to end (seal.hpp, frame_guard.hpp): an attacker on
// the path (the harness's Relay) who flips a byte or splices in a forged
// ACK or CLOSE is rejected, the connection is dropped and resumed, and no
// packet is lost, repeated or reordered; a capture of the WAN holds no
// tunnelled payload in clear unless --integrity-only; a version 3 peer is
// served without protection unless the gateway requires it.
#include "harness.hpp"

#include <tunnel/handshake.hpp>
#include <tunnel/suite.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace inproc {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Runs one attack in the middle of a stream and checks that it was rejected
// by the side it targeted and that nothing was lost.
void attack_and_check(Relay::Tamper t, bool target_gateway) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  std::vector<Bytes> up, down;
  send_both(p, 1, 200);
  ASSERT_TRUE(run_until(p.io, [&] { p.gtun.drain(up); p.ctun.drain(down); return up.size() >= 200 && down.size() >= 200; }, 3000ms));
  p.relay->tamper(std::move(t));
  send_both(p, 201, 200);  // the tamper hits a chunk of these (or a heartbeat)
  ASSERT_TRUE(run_until(p.io, [&] { return p.relay->tampered(); }, 2000ms));
  ASSERT_TRUE(run_until(p.io, [&] {
    const auto forged = target_gateway ? p.gs().counters().rx_forged : p.cpe->session().counters().rx_forged;
    return forged >= 1;
  }, 3000ms)) << "the altered stream was not rejected";
  send_both(p, 401, 200);
  ASSERT_TRUE(run_until(p.io, [&] {
    p.gtun.drain(up);
    p.ctun.drain(down);
    return p.connected() && up.size() >= 600 && down.size() >= 600;
  }, 8000ms)) << up.size() << " up, " << down.size() << " down";
  run_for(p.io, 200ms);
  p.gtun.drain(up);
  p.ctun.drain(down);
  expect_exactly(up, 600, "up");
  expect_exactly(down, 600, "down");
  EXPECT_GE(p.cpe->session().counters().resumes, 1u);
  EXPECT_NE(p.gw->find("cpe-1"), nullptr);  // the session survived
}

TEST(Protection, AFlippedByteIsRejectedAndTheSessionResumesWithNothingLost) {
  Relay::Tamper t;
  t.to_target = true;
  t.at = 20;  // inside the first frame's body or tag
  attack_and_check(std::move(t), true);
}

TEST(Protection, AForgedCloseIsRejectedAndTheSessionResumes) {
  Relay::Tamper t;
  t.to_target = true;
  t.splice.resize(tunnel::wire::kHeaderSize);
  tunnel::wire::encode_empty(t.splice.data(), tunnel::wire::FrameType::close);
  attack_and_check(std::move(t), true);
}

TEST(Protection, AForgedAckTowardTheCpeIsRejected) {
  Relay::Tamper t;
  t.to_target = false;
  t.splice.resize(tunnel::wire::kHeaderSize + tunnel::wire::kDsnSize);
  tunnel::wire::encode_ack(t.splice.data(), UINT64_MAX);
  attack_and_check(std::move(t), false);
}

// True when `hay` contains the 32 payload bytes after the seq of packet `seq`.
bool payload_in(const Bytes& hay, std::uint64_t seq, std::size_t len) {
  const Bytes pkt = udp4(kCpeAddr, kInetAddr, seq, len);
  const auto needle = std::span(pkt).subspan(36, 32);
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

std::size_t payloads_seen_on_the_wan(const std::function<void(tunnel::ClientConfig&)>& ccfg) {
  Peers p({}, ccfg);
  p.relay->capture(true);
  EXPECT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  for (std::uint64_t i = 1; i <= 100; ++i) p.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 1000));
  std::vector<Bytes> up;
  EXPECT_TRUE(run_until(p.io, [&] { p.gtun.drain(up); return up.size() >= 100; }, 3000ms));
  std::size_t seen = 0;
  for (std::uint64_t i = 1; i <= 100; ++i) seen += payload_in(p.relay->captured(), i, 1000);
  return seen;
}

TEST(Protection, AWanCaptureHoldsNoPayloadInClear) {
  EXPECT_EQ(payloads_seen_on_the_wan({}), 0u);
}

TEST(Protection, IntegrityOnlyCarriesThePayloadInClear) {
  // The same search finds every payload when the CPE asks for --integrity-only.
  EXPECT_EQ(payloads_seen_on_the_wan([](tunnel::ClientConfig& c) { c.protection.integrity_only = true; }), 100u);
}

TEST(Protection, AVersion3CpeIsServedUnprotectedUnlessRequired) {
  {
    Peers p({}, [](tunnel::ClientConfig& c) { c.max_version = 3; });
    ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
    EXPECT_EQ(p.cpe->version(), 3);
  }
  {
    LogCapture log;
    Peers p([](tunnel::GatewayConfig& g) { g.protection.require = true; },
           [](tunnel::ClientConfig& c) { c.max_version = 3; });
    run_for(p.io, 600ms);
    EXPECT_FALSE(p.cpe->session().connected());
    EXPECT_GE(p.gw->counters().handshake_failures, 1u);
    EXPECT_GE(log.count("refused by the gateway: protection required)"), 1u) << log.text();
  }
}

TEST(Protection, SuiteNegotiation) {
  using tunnel::SuiteBytes;
  const tunnel::ProtectionPolicy none, integrity{true, false}, require{false, true};
  const SuiteBytes offer = tunnel::offer_suite(true, none);
  EXPECT_EQ(offer.protection, 1);
  auto a = tunnel::answer_suite(4, offer, true, none);
  EXPECT_EQ(a.fault, tunnel::Fault::none);
  EXPECT_EQ(a.bytes.cipher, offer.cipher);
  EXPECT_EQ(tunnel::check_suite(4, offer, a.bytes, true, none), tunnel::Fault::none);
  EXPECT_EQ(tunnel::answer_suite(4, offer, true, integrity).bytes.protection, 2);  // the gateway imposes it
  EXPECT_EQ(tunnel::answer_suite(3, {}, true, require).fault, tunnel::Fault::protection_required);
  EXPECT_EQ(tunnel::check_suite(4, offer, SuiteBytes{}, true, none), tunnel::Fault::protection_required);
  EXPECT_EQ(tunnel::check_suite(4, offer, SuiteBytes{static_cast<std::uint8_t>(3 - offer.cipher), 1}, true, none),
            tunnel::Fault::malformed_hello);
  EXPECT_EQ(tunnel::answer_suite(4, {1, 7}, true, none).fault, tunnel::Fault::malformed_hello);
}

}  // namespace
}  // namespace inproc
