#include <tunnel/class_rules.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tunnel::classify {

std::string_view to_string(RuleError e) noexcept {
  switch (e) {
    case RuleError::ok: return "ok";
    case RuleError::bad_class: return "the class must be 'realtime' or 'bulk', followed by ':'";
    case RuleError::no_keys: return "a rule needs at least one KEY=VALUE after the class";
    case RuleError::bad_key: return "unknown key or missing '=' (keys: proto, sport, dport, src, dst, dscp)";
    case RuleError::duplicate_key: return "a key is given twice";
    case RuleError::bad_proto: return "proto must be udp, tcp, icmp, icmpv6 or 0..255";
    case RuleError::bad_port: return "a port must be 0..65535 or LO-HI with LO <= HI";
    case RuleError::bad_prefix: return "not an IPv4/IPv6 ADDR[/LEN] with LEN within the family and no host bits set";
    case RuleError::bad_dscp: return "dscp must be 0..63 or a name (ef, cs0..cs7, af11..af43, va)";
  }
  return "unknown rule error";
}

namespace {

template <class T>
bool parse_num(std::string_view s, T& out, long max) {
  long v = 0;
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < 0 || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

bool parse_ports(std::string_view s, PortRange& r) {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_num(s, r.lo, 65535)) return false;
    r.hi = r.lo;
    return true;
  }
  return parse_num(s.substr(0, dash), r.lo, 65535) && parse_num(s.substr(dash + 1), r.hi, 65535) && r.lo <= r.hi;
}

bool parse_prefix(std::string_view s, AddrPrefix& out) {
  const auto slash = s.find('/');
  const std::string_view a = s.substr(0, slash);
  char buf[INET6_ADDRSTRLEN];
  if (a.empty() || a.size() >= sizeof buf) return false;
  std::memcpy(buf, a.data(), a.size());
  buf[a.size()] = '\0';
  if (inet_pton(AF_INET, buf, out.addr.data()) == 1) {
    out.family = 4;
  } else if (inet_pton(AF_INET6, buf, out.addr.data()) == 1) {
    out.family = 6;
  } else {
    return false;
  }
  const unsigned width = out.family == 4 ? 32 : 128;
  out.length = static_cast<std::uint8_t>(width);
  if (slash != std::string_view::npos && !parse_num(s.substr(slash + 1), out.length, width)) return false;
  for (unsigned bit = out.length; bit < width; ++bit) {
    if (out.addr[bit / 8] & (0x80u >> (bit % 8))) return false;
  }
  return true;
}

bool prefix_contains(const AddrPrefix& p, std::uint8_t family, const std::array<std::uint8_t, 16>& a) {
  if (p.family == 0) return true;
  if (p.family != family) return false;
  const unsigned full = p.length / 8, rest = p.length % 8;
  if (std::memcmp(p.addr.data(), a.data(), full) != 0) return false;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (p.addr[full] & mask) == (a[full] & mask);
}

}  // namespace

int dscp_from_name(std::string_view n) noexcept {
  if (n == "ef") return 46;
  if (n == "va") return 44;
  if (n.size() == 3 && n.substr(0, 2) == "cs" && n[2] >= '0' && n[2] <= '7') return (n[2] - '0') * 8;
  if (n.size() == 4 && n.substr(0, 2) == "af" && n[2] >= '1' && n[2] <= '4' && n[3] >= '1' && n[3] <= '3') {
    return (n[2] - '0') * 8 + (n[3] - '0') * 2;
  }
  return -1;
}

RuleParse parse_rule(std::string_view text) noexcept {
  RuleParse r;
  const auto colon = text.find(':');
  const std::string_view cls = text.substr(0, colon);
  if (colon == std::string_view::npos || (cls != "realtime" && cls != "bulk")) {
    r.error = RuleError::bad_class;
    return r;
  }
  r.rule.cls = cls == "realtime" ? TrafficClass::realtime : TrafficClass::bulk;
  std::size_t pos = colon + 1;
  if (pos >= text.size()) {
    r.error = RuleError::no_keys;
    r.at = pos;
    return r;
  }
  unsigned seen = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::size_t end = comma == std::string_view::npos ? text.size() : comma;
    const std::string_view kv = text.substr(pos, end - pos);
    const auto eq = kv.find('=');
    r.at = pos;
    if (eq == std::string_view::npos) { r.error = RuleError::bad_key; return r; }
    const std::string_view key = kv.substr(0, eq), val = kv.substr(eq + 1);
    static constexpr std::string_view kKeys[] = {"proto", "sport", "dport", "src", "dst", "dscp"};
    unsigned k = 0;
    while (k < 6 && kKeys[k] != key) ++k;
    if (k == 6) { r.error = RuleError::bad_key; return r; }
    if (seen & (1u << k)) { r.error = RuleError::duplicate_key; return r; }
    seen |= 1u << k;
    r.at = pos + eq + 1;
    bool ok = false;
    switch (k) {
      case 0:
        if (val == "udp") { r.rule.proto = 17; ok = true; }
        else if (val == "tcp") { r.rule.proto = 6; ok = true; }
        else if (val == "icmp") { r.rule.proto = 1; ok = true; }
        else if (val == "icmpv6") { r.rule.proto = 58; ok = true; }
        else ok = parse_num(val, r.rule.proto, 255);
        if (!ok) r.error = RuleError::bad_proto;
        break;
      case 1: ok = parse_ports(val, r.rule.sport); if (!ok) r.error = RuleError::bad_port; break;
      case 2: ok = parse_ports(val, r.rule.dport); if (!ok) r.error = RuleError::bad_port; break;
      case 3: ok = parse_prefix(val, r.rule.src); if (!ok) r.error = RuleError::bad_prefix; break;
      case 4: ok = parse_prefix(val, r.rule.dst); if (!ok) r.error = RuleError::bad_prefix; break;
      case 5: {
        const int named = dscp_from_name(val);
        if (named >= 0) { r.rule.dscp = static_cast<std::int8_t>(named); ok = true; }
        else ok = parse_num(val, r.rule.dscp, 63);
        if (!ok) r.error = RuleError::bad_dscp;
        break;
      }
    }
    if (!ok) return r;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  r.at = 0;
  return r;
}

bool matches(const Rule& r, const PacketInfo& p) noexcept {
  if (r.proto >= 0 && r.proto != p.key.proto) return false;
  if (r.dscp >= 0 && r.dscp != p.dscp) return false;
  if (!r.sport.contains(p.key.sport) || !r.dport.contains(p.key.dport)) return false;
  return prefix_contains(r.src, p.key.family, p.key.src) && prefix_contains(r.dst, p.key.family, p.key.dst);
}

}  // namespace tunnel::classify
