// Traffic classes and what the classifier reads from a packet: the flow's
// 5-tuple, the DSCP and the length. Pure; nothing here allocates.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tunnel::classify {

enum class TrafficClass : std::uint8_t {
  bulk = 0,      // the session's bulk link (one MPTCP connection), paced and CoDel-limited
  realtime = 1,  // the session's realtime links (one TCP connection per path), never behind bulk
};
std::string_view to_string(TrafficClass c) noexcept;

// A flow's identity. Addresses are 16 bytes; an IPv4 address fills the first
// 4 and leaves the rest zero. Ports are 0 for a protocol without ports and
// for an IPv4 fragment other than the first.
struct FlowKey {
  std::array<std::uint8_t, 16> src{};
  std::array<std::uint8_t, 16> dst{};
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint8_t family = 0;  // 4 or 6
  std::uint8_t proto = 0;   // IP protocol number (17 = UDP)

  bool operator==(const FlowKey&) const = default;
};

struct PacketInfo {
  FlowKey key;
  std::uint8_t dscp = 0;     // the upper six bits of the TOS / traffic class byte
  std::uint32_t length = 0;  // the whole IP packet
};

// Reads `pkt`, one raw IPv4 or IPv6 packet (IFF_NO_PI). IPv6 extension
// headers (hop-by-hop, routing, fragment, destination options; at most 8) are
// walked to find the transport header. Returns nothing when the packet is too
// short for its IP header or its version is neither 4 nor 6; ports are left 0
// when the transport header does not fit.
std::optional<PacketInfo> inspect(std::span<const std::uint8_t> pkt) noexcept;

// 32-bit hash of a key (for the flow table); stable within a process.
std::uint32_t hash(const FlowKey& k) noexcept;

}  // namespace tunnel::classify
