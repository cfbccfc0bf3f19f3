// Inspection of raw IPv4/IPv6 packets as read from a TUN device (IFF_NO_PI).
// Pure functions; they never read past the span they are given.
#pragma once

#include <cstdint>
#include <span>

namespace tunnel::ip {

enum class Kind : std::uint8_t {
  ipv4_udp,
  ipv6_udp,
  ipv4_other,  // well-formed IPv4 that is not UDP
  ipv6_other,  // well-formed IPv6 that is not UDP (after extension headers)
  malformed,   // too short, unknown version, or a length field that disagrees
};

// Checks that `pkt` is exactly one IP packet: the version nibble is 4 or 6,
// the header fits, and the packet's own length field equals pkt.size().
bool well_formed(std::span<const std::uint8_t> pkt) noexcept;

// Classifies `pkt`. IPv6 extension headers (hop-by-hop, routing, fragment,
// destination options) are walked to find the transport protocol. An IPv4
// fragment counts as UDP when its protocol field says UDP.
Kind classify(std::span<const std::uint8_t> pkt) noexcept;

inline bool is_udp(Kind k) noexcept { return k == Kind::ipv4_udp || k == Kind::ipv6_udp; }

}  // namespace tunnel::ip
