// The coalescer's GSO packet, split the way the kernel's UDP GSO segmentation
// does (copy the headers, set lengths, IPv4 ID + i, recompute checksums), must
// give back exactly the datagrams that went in.
#include <tunnel/ip_packet.hpp>
#include <tunnel/udp_gso.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using Bytes = std::vector<std::uint8_t>;
namespace gso = tunnel::gso;

namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
void put16(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) acc += be16(p + i);
  if (n & 1) acc += std::uint32_t{p[n - 1]} << 8;
  return acc;
}
std::uint16_t csum(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc);
}

// A UDP datagram with correct IPv4 and UDP checksums.
Bytes udp4(std::uint16_t id, std::size_t payload, std::uint8_t seed, std::uint16_t sport = 4000) {
  Bytes p(28 + payload);
  p[0] = 0x45;
  put16(&p[2], p.size());
  put16(&p[4], id);
  p[6] = 0x40;  // DF
  p[8] = 64;
  p[9] = 17;
  const std::uint8_t src[] = {198, 18, 10, 2}, dst[] = {198, 18, 20, 2};
  std::memcpy(&p[12], src, 4);
  std::memcpy(&p[16], dst, 4);
  put16(&p[10], csum(sum16(p.data(), 20)));
  put16(&p[20], sport);
  put16(&p[22], 9000);
  put16(&p[24], 8 + payload);
  for (std::size_t i = 0; i < payload; ++i) p[28 + i] = static_cast<std::uint8_t>(seed + i * 7);
  std::uint16_t c = csum(sum16(&p[20], 8 + payload, sum16(&p[12], 8) + 17 + 8 + payload));
  put16(&p[26], c ? c : 0xffff);
  return p;
}

Bytes udp6(std::size_t payload, std::uint8_t seed) {
  Bytes p(48 + payload);
  p[0] = 0x60;
  put16(&p[4], 8 + payload);
  p[6] = 17;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 2;
  p[24] = 0xfd;
  p[39] = 3;
  put16(&p[40], 5000);
  put16(&p[42], 9000);
  put16(&p[44], 8 + payload);
  for (std::size_t i = 0; i < payload; ++i) p[48 + i] = static_cast<std::uint8_t>(seed ^ i);
  std::uint16_t c = csum(sum16(&p[40], 8 + payload, sum16(&p[8], 32) + 17 + 8 + payload));
  put16(&p[46], c ? c : 0xffff);
  return p;
}

// What the kernel does with the GSO packet: one datagram per gso_size bytes.
std::vector<Bytes> segment(const gso::VnetHdr& h, const Bytes& super) {
  std::vector<Bytes> out;
  const std::size_t hl = h.hdr_len, iphl = h.csum_start;
  const bool v4 = iphl == 20;
  // The partial checksum holds the pseudo-header sum with the whole length.
  for (std::size_t off = hl, i = 0; off < super.size(); off += h.gso_size, ++i) {
    const std::size_t n = std::min<std::size_t>(h.gso_size, super.size() - off);
    Bytes p(super.begin(), super.begin() + static_cast<long>(hl));
    p.insert(p.end(), super.begin() + static_cast<long>(off), super.begin() + static_cast<long>(off + n));
    put16(&p[iphl + 4], 8 + n);
    if (v4) {
      put16(&p[2], p.size());
      put16(&p[4], be16(&super[4]) + i);
      put16(&p[10], 0);
      put16(&p[10], csum(sum16(p.data(), 20)));
    } else {
      put16(&p[4], 8 + n);
    }
    put16(&p[iphl + 6], 0);
    const std::uint32_t pseudo = (v4 ? sum16(&p[12], 8) : sum16(&p[8], 32)) + 17 + 8 + n;
    std::uint16_t c = csum(sum16(&p[iphl], 8 + n, pseudo));
    put16(&p[iphl + 6], c ? c : 0xffff);
    out.push_back(p);
  }
  // And the partial checksum the coalescer left must be the folded pseudo-header.
  std::uint32_t acc = (v4 ? sum16(&super[12], 8) : sum16(&super[8], 32)) + 17 + (super.size() - iphl);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  EXPECT_EQ(be16(&super[iphl + 6]), acc);
  return out;
}

Bytes concat(const iovec& v) {
  auto* p = static_cast<const std::uint8_t*>(v.iov_base);
  return Bytes(p, p + v.iov_len);
}

}  // namespace

TEST(UdpGso, SinglePacketIsWrittenAsIsWithAnEmptyHeader) {
  gso::UdpCoalescer c;
  const Bytes p = udp4(1, 100, 3);
  ASSERT_TRUE(c.add(p));
  iovec iov[2];
  c.emit(iov);
  gso::VnetHdr h;
  std::memcpy(&h, iov[0].iov_base, sizeof h);
  EXPECT_EQ(h.gso_type, gso::kGsoNone);
  EXPECT_EQ(iov[1].iov_base, p.data()) << "no copy for a lone packet";
  EXPECT_TRUE(c.empty());
}

TEST(UdpGso, Ipv4BatchSegmentsBackToTheSameDatagrams) {
  std::vector<Bytes> in;
  for (int i = 0; i < 10; ++i) in.push_back(udp4(static_cast<std::uint16_t>(65530 + i), 1372, static_cast<std::uint8_t>(i)));
  in.push_back(udp4(65540 & 0xffff, 500, 99));  // shorter last one
  gso::UdpCoalescer c;
  for (const auto& p : in) ASSERT_TRUE(c.add(p));
  EXPECT_EQ(c.count(), in.size());
  iovec iov[2];
  c.emit(iov);
  gso::VnetHdr h;
  std::memcpy(&h, iov[0].iov_base, sizeof h);
  EXPECT_EQ(h.gso_type, gso::kGsoUdpL4);
  EXPECT_EQ(h.flags, gso::kNeedsCsum);
  EXPECT_EQ(h.gso_size, 1372);
  EXPECT_EQ(h.hdr_len, 28);
  const Bytes super = concat(iov[1]);
  EXPECT_TRUE(tunnel::ip::well_formed(super));
  EXPECT_EQ(segment(h, super), in);
}

TEST(UdpGso, Ipv6BatchSegmentsBackToTheSameDatagrams) {
  std::vector<Bytes> in;
  for (int i = 0; i < 5; ++i) in.push_back(udp6(1200, static_cast<std::uint8_t>(i)));
  gso::UdpCoalescer c;
  for (const auto& p : in) ASSERT_TRUE(c.add(p));
  iovec iov[2];
  c.emit(iov);
  gso::VnetHdr h;
  std::memcpy(&h, iov[0].iov_base, sizeof h);
  EXPECT_EQ(h.hdr_len, 48);
  EXPECT_EQ(segment(h, concat(iov[1])), in);
}

TEST(UdpGso, RefusesWhatSegmentationWouldNotReproduce) {
  gso::UdpCoalescer c;
  const Bytes first = udp4(1, 1000, 0), short2 = udp4(2, 400, 0);  // must outlive the batch
  ASSERT_TRUE(c.add(first));
  EXPECT_FALSE(c.add(udp4(3, 1000, 0))) << "IPv4 ID not consecutive";
  EXPECT_FALSE(c.add(udp4(2, 1001, 0))) << "larger than the first";
  EXPECT_FALSE(c.add(udp4(2, 1000, 0, 4001))) << "other flow";
  Bytes ttl = udp4(2, 1000, 0);
  ttl[8] = 63;
  EXPECT_FALSE(c.add(ttl)) << "other TTL";
  Bytes nocsum = udp4(2, 1000, 0);
  put16(&nocsum[26], 0);
  EXPECT_FALSE(c.add(nocsum)) << "no UDP checksum";
  ASSERT_TRUE(c.add(short2));
  EXPECT_FALSE(c.add(udp4(3, 400, 0))) << "nothing after a short one";
  EXPECT_FALSE(c.add(udp6(400, 0))) << "other family";
  iovec iov[2];
  c.emit(iov);

  Bytes frag = udp4(1, 1000, 0);
  frag[6] = 0x20;  // MF
  ASSERT_TRUE(c.add(frag));
  EXPECT_FALSE(c.add(udp4(2, 1000, 0))) << "a fragment starts no batch";
  c.emit(iov);
  std::vector<Bytes> many;
  for (int i = 0; i < 64; ++i) many.push_back(udp4(static_cast<std::uint16_t>(i), 100, 0));
  for (const auto& p : many) ASSERT_TRUE(c.add(p));
  EXPECT_FALSE(c.add(udp4(64, 100, 0))) << "at most 64 segments";
}
