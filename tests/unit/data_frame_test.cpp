// DATA frames of several records and in-frame header compression: every
// packet comes back byte for byte, compression happens exactly when it can
// be undone, and malformed records are refused before a packet is used.
#include <tunnel/data_frame.hpp>
#include <tunnel/ip_packet.hpp>
#include <tunnel/udp_gso.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace w = tunnel::wire;
using Bytes = std::vector<std::uint8_t>;

namespace {

// Computed here from the RFC 791 definition, independently of the code under test.
std::uint16_t ref_ipv4_checksum(const Bytes& p) {
  std::uint32_t s = 0;
  for (int i = 0; i < 20; i += 2)
    if (i != 10) s += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

struct Udp4 {
  std::uint32_t src = 0xc612'0a02, dst = 0xc612'1402;
  std::uint16_t sport = 40000, dport = 5201, id = 1, csum = 0x1234;
  std::uint8_t tos = 0, ttl = 64;
  bool df = true;
  std::size_t payload = 100;
  std::uint8_t fill = 0;
};

void put16(Bytes& p, std::size_t at, std::uint32_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(Bytes& p, std::size_t at, std::uint32_t v) {
  put16(p, at, v >> 16);
  put16(p, at + 2, v & 0xffff);
}

Bytes udp4(const Udp4& u) {
  Bytes p(28 + u.payload);
  p[0] = 0x45;
  p[1] = u.tos;
  put16(p, 2, static_cast<std::uint32_t>(p.size()));
  put16(p, 4, u.id);
  p[6] = u.df ? 0x40 : 0;
  p[8] = u.ttl;
  p[9] = 17;
  put32(p, 12, u.src);
  put32(p, 16, u.dst);
  put16(p, 20, u.sport);
  put16(p, 22, u.dport);
  put16(p, 24, static_cast<std::uint32_t>(8 + u.payload));
  put16(p, 26, u.csum);
  for (std::size_t i = 0; i < u.payload; ++i) p[28 + i] = static_cast<std::uint8_t>(u.fill + i * 7);
  put16(p, 10, ref_ipv4_checksum(p));
  return p;
}

Bytes udp6(std::size_t payload, std::uint8_t flow_byte = 0, std::uint16_t csum = 0xbeef, std::uint8_t fill = 0) {
  Bytes p(48 + payload);
  p[0] = 0x60;
  p[3] = flow_byte;
  put16(p, 4, static_cast<std::uint32_t>(8 + payload));
  p[6] = 17;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 2;
  p[24] = 0xfd;
  p[39] = 1;
  put16(p, 40, 40001);
  put16(p, 42, 5201);
  put16(p, 44, static_cast<std::uint32_t>(8 + payload));
  put16(p, 46, csum);
  for (std::size_t i = 0; i < payload; ++i) p[48 + i] = static_cast<std::uint8_t>(fill + i);
  return p;
}

struct Built {
  Bytes frame;
  std::size_t compressed = 0;
};

// One frame holding `pkts`, written the way the session does: begin, then
// append into a buffer that moves (reallocates) between calls.
Built build(const std::vector<Bytes>& pkts, std::uint64_t dsn = 77, bool compress = true) {
  w::DataWriter wr(compress);
  Bytes f(w::kDataHeaderSize + pkts[0].size());
  f.resize(wr.begin(f.data(), dsn, pkts[0]));
  for (std::size_t i = 1; i < pkts.size(); ++i) {
    const std::size_t len = f.size();
    f.resize(len + pkts[i].size());
    Bytes moved(f);  // the frame is somewhere else now
    f.swap(moved);
    f.resize(len + wr.append(f.data(), len, pkts[i]));
  }
  EXPECT_EQ(wr.packets(), pkts.size());
  return {f, wr.compressed()};
}

// Parses the frame and reads every packet back.
std::vector<Bytes> read_back(const Bytes& frame, std::uint64_t* dsn = nullptr) {
  const auto r = w::parse_frame(frame, {});
  EXPECT_EQ(r.status, w::ParseStatus::ok);
  EXPECT_EQ(r.consumed, frame.size());
  if (dsn) *dsn = r.frame.dsn;
  w::DataReader rd;
  rd.start(r.frame.body);
  std::vector<Bytes> out;
  for (auto p = rd.next(); !p.empty(); p = rd.next()) {
    EXPECT_TRUE(tunnel::ip::well_formed(p));
    out.emplace_back(p.begin(), p.end());
  }
  EXPECT_EQ(out.size(), r.frame.packets);
  return out;
}

std::vector<Bytes> one_flow(std::size_t n, std::size_t payload) {
  std::vector<Bytes> v;
  Udp4 u;
  u.payload = payload;
  for (std::size_t i = 0; i < n; ++i) {
    u.id = static_cast<std::uint16_t>(1000 + i);
    u.csum = static_cast<std::uint16_t>(0x4000 + i * 13);
    u.fill = static_cast<std::uint8_t>(i);
    v.push_back(udp4(u));
  }
  return v;
}

w::ParseStatus parse_status(const Bytes& f) { return w::parse_frame(f, {}).status; }

}  // namespace

TEST(DataFrame, OnePacketIsTheVersion2LayoutUnchanged) {
  const Bytes pkt = udp4({});
  const Built b = build({pkt});
  Bytes expect(w::kDataHeaderSize);
  w::encode_data_header(expect.data(), 77, pkt.size());
  expect.insert(expect.end(), pkt.begin(), pkt.end());
  EXPECT_EQ(b.frame, expect);
  EXPECT_EQ(read_back(b.frame), std::vector<Bytes>{pkt});
}

TEST(DataFrame, OneIpv4FlowCompressesToSevenBytesAPacket) {
  const auto pkts = one_flow(20, 1200);
  const Built b = build(pkts);
  EXPECT_EQ(b.compressed, 19u);
  EXPECT_EQ(b.frame.size(), w::kDataHeaderSize + 1228 + 19 * (7 + 1200));
  std::uint64_t dsn = 0;
  EXPECT_EQ(read_back(b.frame, &dsn), pkts);
  EXPECT_EQ(dsn, 77u);
}

TEST(DataFrame, OneIpv6FlowCompressesToFiveBytesAPacket) {
  std::vector<Bytes> pkts;
  for (int i = 0; i < 10; ++i) pkts.push_back(udp6(300, 0, static_cast<std::uint16_t>(i * 999), static_cast<std::uint8_t>(i)));
  const Built b = build(pkts);
  EXPECT_EQ(b.compressed, 9u);
  EXPECT_EQ(b.frame.size(), w::kDataHeaderSize + 348 + 9 * (5 + 300));
  EXPECT_EQ(read_back(b.frame), pkts);
}

TEST(DataFrame, CompressesOnlyWhatRebuildsExactly) {
  Udp4 base;
  std::vector<Bytes> pkts{udp4(base)};
  std::vector<bool> compressible;
  auto add = [&](Bytes p, bool c) {
    pkts.push_back(std::move(p));
    compressible.push_back(c);
  };
  Udp4 u = base;
  u.id = 2;
  add(udp4(u), true);               // same flow, new ID and checksum
  Bytes bad = udp4(u);
  bad[11] ^= 1;                      // an IPv4 checksum the receiver would not compute
  add(bad, false);
  Bytes ffff = udp4(u);              // the checksum's other encoding of zero is not ours either
  ffff[10] = static_cast<std::uint8_t>(~ffff[10]), ffff[11] = static_cast<std::uint8_t>(~ffff[11]);
  add(ffff, false);
  Bytes udplen = udp4(u);
  put16(udplen, 24, 50);             // UDP length disagrees with IP
  put16(udplen, 10, ref_ipv4_checksum(udplen));
  add(udplen, false);
  u.ttl = 63;
  add(udp4(u), false);               // TTL changed: a new reference...
  u.id = 3;
  add(udp4(u), true);                // ...that the next one uses
  Udp4 frag = u;
  Bytes f = udp4(frag);
  f[6] = 0x20;                       // more fragments
  put16(f, 10, ref_ipv4_checksum(f));
  add(f, false);
  Bytes opts(32, 0);                 // IPv4 with options
  opts[0] = 0x46, opts[3] = 32, opts[9] = 17;
  add(opts, false);
  Bytes icmp = udp4(u);
  icmp[9] = 1;
  put16(icmp, 10, ref_ipv4_checksum(icmp));
  add(icmp, false);
  u.payload = 0;
  add(udp4(u), true);                // empty datagram
  u.payload = w::kMaxCompressedPayload + 1;
  add(udp4(u), false);               // too large for 15 bits
  add(udp6(10), false);              // first IPv6 of its flow
  add(udp6(20, 0, 7), true);
  add(udp6(20, 1, 7), false);        // other flow label

  const Built b = build(pkts);
  EXPECT_EQ(read_back(b.frame), pkts);
  std::size_t want = 0;
  for (bool c : compressible) want += c;
  EXPECT_EQ(b.compressed, want);
}

TEST(DataFrame, InterleavedFlowsAndEvictionStayExact) {
  std::vector<Bytes> pkts;
  std::mt19937 rng(7);
  for (int i = 0; i < 400; ++i) {
    Udp4 u;
    u.sport = static_cast<std::uint16_t>(10000 + rng() % 12);  // 12 flows, 8 slots
    u.id = static_cast<std::uint16_t>(i);
    u.payload = rng() % 200;
    u.csum = static_cast<std::uint16_t>(rng());
    u.fill = static_cast<std::uint8_t>(i);
    pkts.push_back(udp4(u));
  }
  const Built b = build(pkts);
  EXPECT_GT(b.compressed, 100u);
  EXPECT_LT(b.compressed, 399u);
  EXPECT_EQ(read_back(b.frame), pkts);
}

TEST(DataFrame, NoReferenceFartherThan255Records) {
  Udp4 a;
  a.sport = 1;
  std::vector<Bytes> pkts{udp4(a)};
  Udp4 other;
  other.sport = 2;
  for (int i = 0; i < 255; ++i) pkts.push_back(udp6(4, 0, 0, static_cast<std::uint8_t>(i)));
  a.id = 9;
  pkts.push_back(udp4(a));  // 256 records after the first of its flow: sent whole
  a.id = 10;
  pkts.push_back(udp4(a));  // refers to the one before
  const Built b = build(pkts);
  EXPECT_EQ(b.compressed, 254u + 1u);
  EXPECT_EQ(read_back(b.frame), pkts);
}

TEST(DataFrame, WithoutCompressionRecordsAreThePackets) {
  const auto pkts = one_flow(5, 100);
  const Built b = build(pkts, 1, false);
  EXPECT_EQ(b.compressed, 0u);
  EXPECT_EQ(b.frame.size(), w::kDataHeaderSize + 5 * 128);
  EXPECT_EQ(read_back(b.frame), pkts);
}

TEST(DataFrame, RandomTrafficRoundTrips) {
  std::mt19937 rng(2026);
  for (int round = 0; round < 300; ++round) {
    std::vector<Bytes> pkts;
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) {
        pkts.push_back(udp6(rng() % 300, static_cast<std::uint8_t>(rng() % 2), static_cast<std::uint16_t>(rng())));
        continue;
      }
      Udp4 u;
      u.sport = static_cast<std::uint16_t>(rng() % 3);
      u.ttl = static_cast<std::uint8_t>(63 + rng() % 2);
      u.tos = static_cast<std::uint8_t>(rng() % 2 ? 0 : 0xb8);
      u.df = rng() % 3 != 0;
      u.id = static_cast<std::uint16_t>(rng());
      u.csum = static_cast<std::uint16_t>(rng());
      u.payload = rng() % 1400;
      u.fill = static_cast<std::uint8_t>(rng());
      Bytes p = udp4(u);
      if (rng() % 10 == 0) p[10] ^= 0x80;  // now and then a bad header checksum
      pkts.push_back(std::move(p));
    }
    const Built b = build(pkts, rng());
    ASSERT_EQ(read_back(b.frame), pkts) << "round " << round;
  }
}

TEST(DataFrame, RebuiltPacketOutlivesTheNextCall) {
  const auto pkts = one_flow(4, 64);
  const Built b = build(pkts);
  const auto r = w::parse_frame(b.frame, {});
  ASSERT_EQ(r.status, w::ParseStatus::ok);
  w::DataReader rd;
  rd.start(r.frame.body);
  auto p0 = rd.next(), p1 = rd.next(), p2 = rd.next();
  // p1 and p2 are rebuilt; p1 must still be intact after p2 was made.
  EXPECT_EQ(Bytes(p1.begin(), p1.end()), pkts[1]);
  EXPECT_EQ(Bytes(p2.begin(), p2.end()), pkts[2]);
  EXPECT_EQ(Bytes(p0.begin(), p0.end()), pkts[0]);
}

TEST(DataFrame, MalformedRecordsAreRefused) {
  const auto pkts = one_flow(3, 40);
  const Bytes good = build(pkts).frame;
  ASSERT_EQ(parse_status(good), w::ParseStatus::ok);
  const std::size_t r1 = w::kDataHeaderSize + 68;  // the second record (compressed)
  ASSERT_EQ(good[r1] & 0x80, 0x80);

  auto with_body = [](Bytes f) {  // fixes the frame's length field after an edit
    w::encode_header(f.data(), w::FrameType::data, 0, static_cast<std::uint32_t>(f.size() - w::kHeaderSize));
    return f;
  };
  Bytes f = good;
  f[r1 + 2] = 0;  // ref 0
  EXPECT_EQ(parse_status(f), w::ParseStatus::bad_packet);
  f[r1 + 2] = 2;  // before the first record
  EXPECT_EQ(parse_status(f), w::ParseStatus::bad_packet);
  f = good;
  f[r1 + 1] = static_cast<std::uint8_t>(f[r1 + 1] + 1);  // payload longer than what is left
  EXPECT_EQ(parse_status(f), w::ParseStatus::bad_packet);
  f = good;
  f.push_back(0x80);  // a record cut short
  EXPECT_EQ(parse_status(with_body(f)), w::ParseStatus::bad_packet);
  f = good;
  f.push_back(0x00);  // a byte that starts no record
  EXPECT_EQ(parse_status(with_body(f)), w::ParseStatus::bad_packet);
  // A compressed record first.
  Bytes c(w::kDataHeaderSize);
  Bytes rec{0x80, 20, 1, 0, 0, 0, 0};
  rec.resize(rec.size() + 20 + 20);
  c.insert(c.end(), rec.begin(), rec.end());
  EXPECT_EQ(parse_status(with_body(c)), w::ParseStatus::bad_packet);
  // Referring to a packet that cannot lend its headers (ICMP).
  Bytes icmp = pkts[0];
  icmp[9] = 1;
  f = build({icmp}).frame;
  const Bytes tail{0x80, 4, 1, 0, 0, 0, 0, 1, 2, 3, 4};
  f.insert(f.end(), tail.begin(), tail.end());
  EXPECT_EQ(parse_status(with_body(f)), w::ParseStatus::bad_packet);
  EXPECT_EQ(w::count_records({}), 0u);
}

// The receiver hands rebuilt packets straight to the TUN's GSO coalescer,
// which may hold them past the reader's next call: a run of one flow must
// still join into one GSO write, as the same packets do when they arrive
// whole. The run starts at a rebuilt packet (as after a flush mid-frame),
// whose memory the reader reuses two calls later.
TEST(DataFrame, RebuiltRunJoinsIntoOneGsoWrite) {
  const auto pkts = one_flow(41, 64);
  const Built b = build(pkts);
  ASSERT_EQ(b.compressed, 40u);
  const auto r = w::parse_frame(b.frame, {});
  ASSERT_EQ(r.status, w::ParseStatus::ok);
  w::DataReader rd;
  rd.start(r.frame.body);
  ASSERT_EQ(rd.next().size(), pkts[0].size());  // the full first record, not offered
  tunnel::gso::UdpCoalescer co;
  std::size_t offered = 0;
  for (auto p = rd.next(); !p.empty(); p = rd.next()) {
    EXPECT_TRUE(co.add(p)) << "packet " << offered + 1 << " did not join the run";
    ++offered;
  }
  EXPECT_EQ(offered, 40u);
  EXPECT_EQ(co.count(), 40u);
}
