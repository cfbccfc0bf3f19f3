// Prefixes and packet addresses in the raw form the per-packet code
// compares: the gateway's routing table and a session's source check.
#pragma once

#include <tunnel/address.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

namespace tunnel {

// A prefix in the form the per-packet code compares: family 4 or 6, the
// network's bytes with host bits cleared.
struct RawPrefix {
  std::uint8_t family = 0;
  std::uint8_t length = 0;
  std::array<std::uint8_t, 16> net{};
  bool operator==(const RawPrefix&) const = default;
  static RawPrefix from(const Prefix& p);
  bool contains(std::uint8_t family, const std::uint8_t* addr) const;
  bool overlaps(const RawPrefix& o) const;
};

struct RawPrefixHash {
  std::size_t operator()(const RawPrefix& p) const noexcept;
};

// Source and destination of an IP packet as raw bytes; false if too short.
struct PacketAddrs {
  std::uint8_t family = 0;
  const std::uint8_t* src = nullptr;
  const std::uint8_t* dst = nullptr;
};
bool packet_addrs(std::span<const std::uint8_t> pkt, PacketAddrs& out);

// Clears the bits after the first `len` of a 16-byte address.
void mask_bits(std::array<std::uint8_t, 16>& a, unsigned len);

// True when `pkt`'s source address lies in one of `prefixes` (false for a
// packet too short to have one).
inline bool source_in(std::span<const RawPrefix> prefixes, std::span<const std::uint8_t> pkt) {
  PacketAddrs a;
  if (!packet_addrs(pkt, a)) return false;
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const RawPrefix& p) { return p.contains(a.family, a.src); });
}

}  // namespace tunnel
