#include <tunnel/ip_packet.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace w = tunnel::wire;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A minimal IPv4/UDP packet of `total` bytes.
Bytes ipv4_udp(std::size_t total, std::uint8_t fillbyte = 0xab) {
  Bytes p(total, fillbyte);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[6] = p[7] = 0;  // no fragmentation
  p[9] = 17;
  return p;
}

Bytes ipv6_packet(std::size_t payload, std::uint8_t next) {
  Bytes p(40 + payload, 0x5a);
  p[0] = 0x60;
  p[4] = static_cast<std::uint8_t>(payload >> 8);
  p[5] = static_cast<std::uint8_t>(payload);
  p[6] = next;
  return p;
}

Bytes data_frame(std::uint64_t dsn, const Bytes& pkt) {
  Bytes f(w::kDataHeaderSize);
  w::encode_data_header(f.data(), dsn, pkt.size());
  f.insert(f.end(), pkt.begin(), pkt.end());
  return f;
}

w::ParseResult parse(const Bytes& b, w::Limits l = {}) { return w::parse_frame(b, l); }

}  // namespace

TEST(Wire, DataRoundTrip) {
  const Bytes pkt = ipv4_udp(1500);
  const Bytes f = data_frame(0x0102030405060708ull, pkt);
  ASSERT_EQ(f.size(), w::kDataHeaderSize + 1500);
  EXPECT_EQ(f[0], w::kVersion);
  EXPECT_EQ(f[1], static_cast<std::uint8_t>(w::FrameType::data));
  const auto r = parse(f);
  ASSERT_EQ(r.status, w::ParseStatus::ok);
  EXPECT_EQ(r.consumed, f.size());
  EXPECT_EQ(r.frame.type, w::FrameType::data);
  EXPECT_EQ(r.frame.dsn, 0x0102030405060708ull);
  EXPECT_EQ(Bytes(r.frame.body.begin(), r.frame.body.end()), pkt);
}

TEST(Wire, ControlFramesRoundTrip) {
  Bytes b(w::kHeaderSize + 256);
  b.resize(w::encode_ack(b.data(), 77));
  auto r = parse(b);
  ASSERT_EQ(r.status, w::ParseStatus::ok);
  EXPECT_EQ(r.frame.type, w::FrameType::ack);
  EXPECT_EQ(r.frame.dsn, 77u);

  for (auto t : {w::FrameType::heartbeat, w::FrameType::close}) {
    Bytes e(w::kHeaderSize);
    ASSERT_EQ(w::encode_empty(e.data(), t), w::kHeaderSize);
    r = parse(e);
    ASSERT_EQ(r.status, w::ParseStatus::ok);
    EXPECT_EQ(r.frame.type, t);
    EXPECT_TRUE(r.frame.body.empty());
  }

  Bytes err(w::kHeaderSize + 256);
  const std::string longreason(300, 'x');
  err.resize(w::encode_error(err.data(), longreason));
  r = parse(err);
  ASSERT_EQ(r.status, w::ParseStatus::ok);
  EXPECT_EQ(r.frame.body.size(), 256u) << "reason is truncated to 256 bytes";
}

TEST(Wire, EveryTruncationNeedsMore) {
  const Bytes f = data_frame(5, ipv4_udp(100));
  for (std::size_t n = 0; n < f.size(); ++n) {
    const Bytes part(f.begin(), f.begin() + static_cast<long>(n));
    EXPECT_EQ(parse(part).status, w::ParseStatus::need_more) << "prefix of " << n << " bytes";
  }
}

TEST(Wire, ManyFramesInOneBuffer) {
  Bytes stream;
  for (std::uint64_t i = 1; i <= 50; ++i) {
    const Bytes f = data_frame(i, ipv4_udp(20 + i * 7));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::size_t off = 0;
  std::uint64_t expect = 1;
  while (off < stream.size()) {
    const auto r = w::parse_frame(std::span(stream).subspan(off), {});
    ASSERT_EQ(r.status, w::ParseStatus::ok);
    EXPECT_EQ(r.frame.dsn, expect);
    EXPECT_EQ(r.frame.body.size(), 20 + expect * 7);
    ++expect;
    off += r.consumed;
  }
  EXPECT_EQ(expect, 51u);
}

TEST(Wire, RejectsBadVersionAtFirstByte) {
  Bytes f = data_frame(1, ipv4_udp(40));
  f[0] = 2;  // version 2 carried one packet per DATA frame: refused
  EXPECT_EQ(parse(Bytes{1}).status, w::ParseStatus::bad_version);
  EXPECT_EQ(parse(Bytes{2}).status, w::ParseStatus::bad_version);
  EXPECT_EQ(parse(Bytes{5}).status, w::ParseStatus::bad_version);
  EXPECT_EQ(parse(f).status, w::ParseStatus::bad_version);
}

TEST(Wire, Version3KnowsOnlyItsOwnFrameTypes) {
  Bytes f(w::kHeaderSize + 8, 0);
  w::encode_header(f.data(), w::FrameType::receipt, 0, 8, 3);
  w::Limits v3;
  v3.min_version = v3.max_version = 3;
  EXPECT_EQ(parse(f, v3).status, w::ParseStatus::bad_type);
  w::encode_header(f.data(), w::FrameType::receipt, 0, 8, 4);
  EXPECT_EQ(parse(f).status, w::ParseStatus::ok);
}

TEST(Wire, AcceptsOnlyTheVersionsOfTheConnection) {
  Bytes f = data_frame(1, ipv4_udp(40));
  w::Limits v3;
  v3.min_version = v3.max_version = 3;
  EXPECT_EQ(parse(f, v3).status, w::ParseStatus::bad_version);  // a version 4 frame on a version 3 connection
  f[0] = 3;
  EXPECT_EQ(parse(f, v3).status, w::ParseStatus::ok);
  EXPECT_EQ(parse(f, v3).frame.version, 3);
  EXPECT_EQ(parse(f).status, w::ParseStatus::bad_version);      // and the other way round
  w::Limits handshake;
  handshake.min_version = w::kMinVersion;
  EXPECT_EQ(parse(f, handshake).status, w::ParseStatus::ok);    // both during the handshake
}

TEST(Wire, RejectsUnknownType) {
  Bytes f = data_frame(1, ipv4_udp(40));
  for (std::uint8_t t : {std::uint8_t{0}, std::uint8_t{14}, std::uint8_t{255}}) {
    f[1] = t;
    EXPECT_EQ(parse(f).status, w::ParseStatus::bad_type) << int(t);
  }
}

TEST(Wire, RejectsUndefinedFlags) {
  Bytes f = data_frame(1, ipv4_udp(40));
  f[3] = 1;
  EXPECT_EQ(parse(f).status, w::ParseStatus::bad_flags);
}

TEST(Wire, RejectsLengthsBeforeReadingBody) {
  // A huge length is refused from the header alone, without waiting for a body.
  Bytes h(w::kHeaderSize);
  w::encode_header(h.data(), w::FrameType::data, 0, 0xffffffffu);
  EXPECT_EQ(parse(h).status, w::ParseStatus::bad_length);
  // Above the receiver's limit.
  w::Limits small{w::kDsnSize + 100};
  EXPECT_EQ(parse(data_frame(1, ipv4_udp(101)), small).status, w::ParseStatus::bad_length);
  EXPECT_EQ(parse(data_frame(1, ipv4_udp(100)), small).status, w::ParseStatus::ok);
  // Too short for a DATA frame's sequence number and an IP header.
  w::encode_header(h.data(), w::FrameType::data, 0, 4);
  EXPECT_EQ(parse(h).status, w::ParseStatus::bad_length);
  // ACK must be exactly 8 bytes; HEARTBEAT and CLOSE exactly 0.
  w::encode_header(h.data(), w::FrameType::ack, 0, 9);
  EXPECT_EQ(parse(h).status, w::ParseStatus::bad_length);
  w::encode_header(h.data(), w::FrameType::heartbeat, 0, 1);
  EXPECT_EQ(parse(h).status, w::ParseStatus::bad_length);
  w::encode_header(h.data(), w::FrameType::error, 0, 257);
  EXPECT_EQ(parse(h).status, w::ParseStatus::bad_length);
}

TEST(Wire, RejectsDataThatIsNotOneIpPacket) {
  Bytes pkt = ipv4_udp(60);
  pkt[3] = 59;  // IP total length disagrees with the frame
  EXPECT_EQ(parse(data_frame(1, pkt)).status, w::ParseStatus::bad_packet);
  pkt = ipv4_udp(60);
  pkt[0] = 0x75;  // version 7
  EXPECT_EQ(parse(data_frame(1, pkt)).status, w::ParseStatus::bad_packet);
  pkt = ipv4_udp(60);
  pkt[0] = 0x44;  // IHL 16 bytes < 20
  EXPECT_EQ(parse(data_frame(1, pkt)).status, w::ParseStatus::bad_packet);
  Bytes v6 = ipv6_packet(100, 17);
  v6[5] = 99;
  EXPECT_EQ(parse(data_frame(1, v6)).status, w::ParseStatus::bad_packet);
  EXPECT_EQ(parse(data_frame(1, ipv6_packet(100, 17))).status, w::ParseStatus::ok);
}

TEST(Wire, RandomBytesNeverCrashOrOverrun) {
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    Bytes b(rng() % 64);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    if (!b.empty() && rng() % 2) b[0] = w::kVersion;
    const auto r = parse(b);
    if (r.status == w::ParseStatus::ok) {
      ASSERT_LE(r.consumed, b.size());
      ASSERT_GE(r.frame.body.data(), b.data());
      ASSERT_LE(r.frame.body.data() + r.frame.body.size(), b.data() + b.size());
    }
  }
}

TEST(IpPacket, Classifies) {
  namespace ip = tunnel::ip;
  EXPECT_EQ(ip::classify(ipv4_udp(28)), ip::Kind::ipv4_udp);
  Bytes tcp = ipv4_udp(40);
  tcp[9] = 6;
  EXPECT_EQ(ip::classify(tcp), ip::Kind::ipv4_other);
  EXPECT_EQ(ip::classify(ipv6_packet(8, 17)), ip::Kind::ipv6_udp);
  EXPECT_EQ(ip::classify(ipv6_packet(8, 58)), ip::Kind::ipv6_other);  // ICMPv6
  // Hop-by-hop options header (8 bytes) then UDP.
  Bytes hbh = ipv6_packet(16, 0);
  hbh[40] = 17;
  hbh[41] = 0;
  EXPECT_EQ(ip::classify(hbh), ip::Kind::ipv6_udp);
  // Extension header that runs past the packet.
  Bytes cut = ipv6_packet(8, 0);
  cut[41] = 5;
  cut[40] = 0;
  EXPECT_EQ(ip::classify(cut), ip::Kind::malformed);
  // A later IPv6 fragment of a UDP datagram.
  Bytes frag = ipv6_packet(16, 44);
  frag[40] = 17;
  frag[42] = 0x01;  // offset != 0
  EXPECT_EQ(ip::classify(frag), ip::Kind::ipv6_udp);
  EXPECT_EQ(ip::classify(Bytes{}), ip::Kind::malformed);
  EXPECT_EQ(ip::classify(Bytes(19, 0x45)), ip::Kind::malformed);
}
