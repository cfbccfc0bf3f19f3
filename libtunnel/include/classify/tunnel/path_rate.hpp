// Parsing of path rates from flags: `--path dsl0,down=20mbit,up=5mbit`.
// Pure; returns a closed error instead of throwing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel {

enum class RateError : std::uint8_t {
  ok,
  bad_name,      // empty, longer than 15 bytes (IFNAMSIZ - 1), or has '/' or whitespace
  bad_key,       // a key other than down/up, or no '='
  duplicate_key, // down or up given twice
  bad_rate,      // not NUMBER UNIT with UNIT bit|kbit|mbit|gbit, or zero, or over 1000gbit
};
std::string_view to_string(RateError e) noexcept;

// "20mbit" -> 20'000'000; units bit, kbit, mbit, gbit (decimal, as tc); a
// decimal fraction is allowed ("1.5mbit"). Returns 0 on error.
std::uint64_t parse_rate(std::string_view s) noexcept;

struct PathRateSpec {
  std::string_view name;       // points into the parsed text
  std::uint64_t down_bps = 0;  // 0: not given (unknown)
  std::uint64_t up_bps = 0;
};

struct PathParse {
  RateError error = RateError::ok;
  std::size_t at = 0;  // offset of the wrong part
  PathRateSpec spec;
};

// "IFNAME[,down=RATE][,up=RATE]".
PathParse parse_path_spec(std::string_view text) noexcept;

// The built-in control topic by which a CPE tells its gateway each path's
// downlink rate, for the gateway's downlink shaping. Body: one line per path,
// "LINK RATE\n", LINK the path's realtime link (1..255), RATE in bit/s
// (decimal, 1..10^12), each link at most once, at most 255 lines.
inline constexpr std::string_view kDownlinkTopic = "tunneld.downlink";

struct LinkRate {
  unsigned link = 0;
  std::uint64_t bps = 0;
};
std::string format_downlink_rates(std::span<const LinkRate> rates);
// False (and `out` unspecified) when `body` is not in the form above.
bool parse_downlink_rates(std::string_view body, std::vector<LinkRate>& out);

}  // namespace tunnel
