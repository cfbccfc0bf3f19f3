// Parsing of path rates from flags: `--path dsl0,down=20mbit,up=5mbit`.
// Pure; returns a closed error instead of throwing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

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

struct PathSpec {
  std::string_view name;       // points into the parsed text
  std::uint64_t down_bps = 0;  // 0: not given (unknown)
  std::uint64_t up_bps = 0;
};

struct PathParse {
  RateError error = RateError::ok;
  std::size_t at = 0;  // offset of the wrong part
  PathSpec spec;
};

// "IFNAME[,down=RATE][,up=RATE]".
PathParse parse_path_spec(std::string_view text) noexcept;

// The bulk pacing rate for the summed path rates: `permille` of the sum
// (e.g. 950), 0 (unpaced) when any path's rate is unknown.
std::uint64_t bulk_pace_rate(const PathSpec* paths, std::size_t n, bool downlink, unsigned permille) noexcept;

}  // namespace tunnel
