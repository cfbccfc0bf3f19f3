#include <tunnel/path_rate.hpp>

#include <charconv>

namespace tunnel {

std::string_view to_string(RateError e) noexcept {
  switch (e) {
    case RateError::ok: return "ok";
    case RateError::bad_name: return "the interface name must be 1..15 bytes without '/' or spaces";
    case RateError::bad_key: return "expected down=RATE or up=RATE";
    case RateError::duplicate_key: return "down or up given twice";
    case RateError::bad_rate: return "a rate is NUMBER followed by bit, kbit, mbit or gbit (e.g. 20mbit), above 0 and at most 1000gbit";
  }
  return "unknown rate error";
}

std::uint64_t parse_rate(std::string_view s) noexcept {
  std::size_t i = 0;
  std::uint64_t whole = 0, frac = 0, frac_div = 1;
  const auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (!digit(0)) return 0;
  for (; digit(i); ++i) {
    whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (whole > 1'000'000'000'000ull) return 0;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return 0;
    for (; digit(i); ++i) {
      if (frac_div < 1'000'000'000ull) { frac = frac * 10 + static_cast<std::uint64_t>(s[i] - '0'); frac_div *= 10; }
    }
  }
  const std::string_view unit = s.substr(i);
  std::uint64_t mul = 0;
  if (unit == "bit") mul = 1;
  else if (unit == "kbit") mul = 1'000;
  else if (unit == "mbit") mul = 1'000'000;
  else if (unit == "gbit") mul = 1'000'000'000;
  else return 0;
  if (whole > 1'000'000'000'000ull / mul) return 0;
  const std::uint64_t v = whole * mul + frac * mul / frac_div;
  return v <= 1'000'000'000'000ull ? v : 0;
}

PathParse parse_path_spec(std::string_view text) noexcept {
  PathParse r;
  const auto comma = text.find(',');
  const std::string_view name = text.substr(0, comma);
  bool name_ok = !name.empty() && name.size() <= 15;
  for (char c : name) name_ok = name_ok && c != '/' && c != ' ' && c != '\t' && c != '=';
  if (!name_ok) { r.error = RateError::bad_name; return r; }
  r.spec.name = name;
  if (comma == std::string_view::npos) return r;
  std::size_t pos = comma + 1;
  bool seen_down = false, seen_up = false;
  for (int guard = 0; guard < 3; ++guard) {
    const auto next = text.find(',', pos);
    const std::size_t end = next == std::string_view::npos ? text.size() : next;
    const std::string_view kv = text.substr(pos, end - pos);
    const auto eq = kv.find('=');
    r.at = pos;
    if (eq == std::string_view::npos) { r.error = RateError::bad_key; return r; }
    const std::string_view key = kv.substr(0, eq);
    bool* seen = key == "down" ? &seen_down : key == "up" ? &seen_up : nullptr;
    if (!seen) { r.error = RateError::bad_key; return r; }
    if (*seen) { r.error = RateError::duplicate_key; return r; }
    *seen = true;
    r.at = pos + eq + 1;
    const std::uint64_t v = parse_rate(kv.substr(eq + 1));
    if (v == 0) { r.error = RateError::bad_rate; return r; }
    (key == "down" ? r.spec.down_bps : r.spec.up_bps) = v;
    if (next == std::string_view::npos) { r.at = 0; return r; }
    pos = next + 1;
  }
  r.error = RateError::bad_key;  // a third key: only down and up exist
  return r;
}

std::string format_downlink_rates(std::span<const LinkRate> rates) {
  std::string out;
  for (const auto& r : rates) out += std::to_string(r.link) + ' ' + std::to_string(r.bps) + '\n';
  return out;
}

bool parse_downlink_rates(std::string_view body, std::vector<LinkRate>& out) {
  out.clear();
  // A decimal number of 1..max_digits digits, no sign, no leading zero.
  const auto number = [](std::string_view t, std::size_t max_digits, std::uint64_t& v) {
    if (t.empty() || t.size() > max_digits || t[0] == '0') return false;
    v = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
  };
  while (!body.empty()) {
    const auto nl = body.find('\n');
    if (nl == std::string_view::npos || out.size() == 255) return false;
    const std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    const auto sp = line.find(' ');
    std::uint64_t link = 0, bps = 0;
    if (sp == std::string_view::npos || !number(line.substr(0, sp), 3, link) || link > 255 ||
        !number(line.substr(sp + 1), 13, bps) || bps > 1'000'000'000'000ULL)
      return false;
    for (const auto& r : out)
      if (r.link == link) return false;
    out.push_back({static_cast<unsigned>(link), bps});
  }
  return true;
}

}  // namespace tunnel
