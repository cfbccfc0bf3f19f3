#include <tunnel/raw_prefix.hpp>

#include <cstring>

namespace tunnel {
void mask_bits(std::array<std::uint8_t, 16>& a, unsigned len) {
  std::size_t full = len / 8;
  if (len % 8) {
    a[full] &= static_cast<std::uint8_t>(0xffu << (8 - len % 8));
    ++full;
  }
  if (full < a.size()) std::memset(a.data() + full, 0, a.size() - full);
}

RawPrefix RawPrefix::from(const Prefix& p) {
  RawPrefix r;
  if (p.addr.is_v4()) {
    r.family = 4;
    const auto b = p.addr.to_v4().to_bytes();
    std::memcpy(r.net.data(), b.data(), 4);
  } else {
    r.family = 6;
    const auto b = p.addr.to_v6().to_bytes();
    std::memcpy(r.net.data(), b.data(), 16);
  }
  r.length = static_cast<std::uint8_t>(std::min<unsigned>(p.length, r.family == 4 ? 32 : 128));
  mask_bits(r.net, r.length);
  return r;
}

bool RawPrefix::contains(std::uint8_t fam, const std::uint8_t* addr) const {
  if (fam != family) return false;
  const std::size_t full = length / 8;
  if (std::memcmp(net.data(), addr, full) != 0) return false;
  const unsigned rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (addr[full] & mask) == net[full];
}

bool RawPrefix::overlaps(const RawPrefix& o) const {
  if (family != o.family) return false;
  return length <= o.length ? contains(o.family, o.net.data()) : o.contains(family, net.data());
}

std::size_t RawPrefixHash::operator()(const RawPrefix& p) const noexcept {
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, p.net.data(), 8);
  std::memcpy(&b, p.net.data() + 8, 8);
  std::uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
  return static_cast<std::size_t>(h ^ (std::uint64_t{p.family} << 56) ^ (std::uint64_t{p.length} << 48));
}

bool packet_addrs(std::span<const std::uint8_t> pkt, PacketAddrs& out) {
  if (pkt.empty()) return false;
  const unsigned v = pkt[0] >> 4;
  if (v == 4 && pkt.size() >= 20) {
    out = {4, pkt.data() + 12, pkt.data() + 16};
    return true;
  }
  if (v == 6 && pkt.size() >= 40) {
    out = {6, pkt.data() + 8, pkt.data() + 24};
    return true;
  }
  return false;
}

}  // namespace tunnel
