#include <tunnel/ip_packet.hpp>

namespace tunnel::ip {
namespace {

constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kDestOpts = 60;
constexpr std::size_t kIpv6Header = 40;

}  // namespace

bool well_formed(std::span<const std::uint8_t> pkt) noexcept {
  if (pkt.empty()) return false;
  const unsigned version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt.size() < 20) return false;
    const std::size_t ihl = static_cast<std::size_t>(pkt[0] & 0x0f) * 4;
    const std::size_t total = (std::size_t{pkt[2]} << 8) | pkt[3];
    return ihl >= 20 && ihl <= total && total == pkt.size();
  }
  if (version == 6) {
    if (pkt.size() < kIpv6Header) return false;
    const std::size_t payload = (std::size_t{pkt[4]} << 8) | pkt[5];
    return kIpv6Header + payload == pkt.size();  // jumbograms are not carried
  }
  return false;
}

Kind classify(std::span<const std::uint8_t> pkt) noexcept {
  if (!well_formed(pkt)) return Kind::malformed;
  if ((pkt[0] >> 4) == 4) return pkt[9] == kProtoUdp ? Kind::ipv4_udp : Kind::ipv4_other;

  std::uint8_t next = pkt[6];
  std::size_t off = kIpv6Header;
  // Bounded walk: each extension header advances `off` by at least 8 bytes.
  for (int hops = 0; hops < 16; ++hops) {
    if (next == kProtoUdp) return Kind::ipv6_udp;
    if (next != kHopByHop && next != kRouting && next != kFragment && next != kDestOpts) {
      return Kind::ipv6_other;
    }
    if (off + 8 > pkt.size()) return Kind::malformed;
    const std::uint8_t following = pkt[off];
    if (next == kFragment) {
      const bool first = ((pkt[off + 2] << 8 | pkt[off + 3]) & 0xfff8) == 0;
      // Later fragments carry no transport header; they belong to the same
      // datagram as the first, so judge them by the next-header field.
      if (!first) return following == kProtoUdp ? Kind::ipv6_udp : Kind::ipv6_other;
      off += 8;
    } else {
      off += (std::size_t{pkt[off + 1]} + 1) * 8;
    }
    next = following;
  }
  return Kind::ipv6_other;
}

}  // namespace tunnel::ip
