// Operator rules that put packets in a traffic class, from flags such as
//
//   --class realtime:proto=udp,dport=3478-3481
//   --class bulk:dst=198.51.100.0/24
//   --class realtime:dscp=ef
//
// Syntax: CLASS ':' KEY '=' VALUE { ',' KEY '=' VALUE }, CLASS is `realtime`
// or `bulk`, each key at most once, at least one key. Keys:
//   proto  udp | tcp | icmp | icmpv6 | 0..255
//   sport, dport  PORT or LO-HI (0..65535, LO <= HI)
//   src, dst      ADDR/LEN or ADDR (IPv4 or IPv6; host bits must be zero)
//   dscp   0..63, or a name: ef, cs0..cs7, af11..af43, va
// A packet matches a rule when it matches every key the rule names. Rules
// are tried in the order given; the first match decides (classifier.hpp).
// Pure: parsing allocates nothing and returns a closed error.
#pragma once

#include <tunnel/traffic_class.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tunnel::classify {

struct PortRange {
  std::uint16_t lo = 0, hi = 65535;
  bool contains(std::uint16_t p) const noexcept { return p >= lo && p <= hi; }
};

struct AddrPrefix {
  std::array<std::uint8_t, 16> addr{};
  std::uint8_t family = 0;  // 0: any address; 4 or 6: only that family
  std::uint8_t length = 0;  // bits
};

struct Rule {
  TrafficClass cls = TrafficClass::bulk;
  std::int16_t proto = -1;  // -1: any
  std::int8_t dscp = -1;    // -1: any
  PortRange sport, dport;
  AddrPrefix src, dst;
};

enum class RuleError : std::uint8_t {
  ok,
  bad_class,      // not `realtime:` or `bulk:`
  no_keys,        // nothing after the colon
  bad_key,        // a key this syntax does not define, or no '='
  duplicate_key,  // a key given twice
  bad_proto,      // not a protocol name or 0..255
  bad_port,       // not PORT or LO-HI within 0..65535 with LO <= HI
  bad_prefix,     // not an address, a length beyond its family, or host bits set
  bad_dscp,       // not 0..63 or a DSCP name
};
std::string_view to_string(RuleError e) noexcept;

struct RuleParse {
  RuleError error = RuleError::ok;
  std::size_t at = 0;  // offset in the input of the part that is wrong
  Rule rule;
};

RuleParse parse_rule(std::string_view text) noexcept;

// DSCP names (ef, af41, cs5, ...) to their value; -1 for an unknown name.
int dscp_from_name(std::string_view name) noexcept;

bool matches(const Rule& r, const PacketInfo& p) noexcept;

}  // namespace tunnel::classify
