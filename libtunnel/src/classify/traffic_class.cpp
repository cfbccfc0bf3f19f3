#include <tunnel/traffic_class.hpp>

#include <cstring>

namespace tunnel::classify {

std::string_view to_string(TrafficClass c) noexcept {
  return c == TrafficClass::realtime ? "realtime" : "bulk";
}

namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

bool has_ports(std::uint8_t proto) {
  return proto == 6 || proto == 17 || proto == 132 || proto == 136;  // TCP, UDP, SCTP, UDP-Lite
}

void read_ports(std::span<const std::uint8_t> pkt, std::size_t off, PacketInfo& info) {
  if (!has_ports(info.key.proto) || off + 4 > pkt.size()) return;
  info.key.sport = be16(&pkt[off]);
  info.key.dport = be16(&pkt[off + 2]);
}

}  // namespace

std::optional<PacketInfo> inspect(std::span<const std::uint8_t> pkt) noexcept {
  if (pkt.empty()) return std::nullopt;
  PacketInfo info;
  info.length = static_cast<std::uint32_t>(pkt.size());
  const unsigned version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt.size() < 20) return std::nullopt;
    const std::size_t ihl = (pkt[0] & 0x0f) * 4u;
    if (ihl < 20 || ihl > pkt.size()) return std::nullopt;
    info.key.family = 4;
    info.dscp = pkt[1] >> 2;
    info.key.proto = pkt[9];
    std::memcpy(info.key.src.data(), &pkt[12], 4);
    std::memcpy(info.key.dst.data(), &pkt[16], 4);
    const bool later_fragment = (be16(&pkt[6]) & 0x1fff) != 0;
    if (!later_fragment) read_ports(pkt, ihl, info);
    return info;
  }
  if (version == 6) {
    if (pkt.size() < 40) return std::nullopt;
    info.key.family = 6;
    info.dscp = static_cast<std::uint8_t>((be16(&pkt[0]) >> 4) & 0xff) >> 2;
    std::memcpy(info.key.src.data(), &pkt[8], 16);
    std::memcpy(info.key.dst.data(), &pkt[24], 16);
    std::uint8_t next = pkt[6];
    std::size_t off = 40;
    for (int i = 0; i < 8; ++i) {
      if (next == 0 || next == 43 || next == 60) {
        if (off + 8 > pkt.size()) break;
        const std::uint8_t n = pkt[off];
        off += (pkt[off + 1] + 1u) * 8u;
        next = n;
      } else if (next == 44) {
        if (off + 8 > pkt.size()) break;
        const std::uint8_t n = pkt[off];
        const bool later_fragment = (be16(&pkt[off + 2]) & 0xfff8) != 0;
        off += 8;
        next = n;
        if (later_fragment) { info.key.proto = next; return info; }
      } else {
        break;
      }
    }
    info.key.proto = next;
    read_ports(pkt, off, info);
    return info;
  }
  return std::nullopt;
}

std::uint32_t hash(const FlowKey& k) noexcept {
  // FNV-1a over the fields that make the key.
  std::uint32_t h = 2166136261u;
  auto mix = [&h](const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) { h ^= p[i]; h *= 16777619u; }
  };
  const std::size_t alen = k.family == 6 ? 16 : 4;
  mix(k.src.data(), alen);
  mix(k.dst.data(), alen);
  const std::uint8_t rest[6] = {static_cast<std::uint8_t>(k.sport >> 8), static_cast<std::uint8_t>(k.sport),
                                static_cast<std::uint8_t>(k.dport >> 8), static_cast<std::uint8_t>(k.dport),
                                k.family, k.proto};
  mix(rest, sizeof rest);
  return h;
}

}  // namespace tunnel::classify
