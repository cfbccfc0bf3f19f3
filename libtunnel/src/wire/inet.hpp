// Big-endian loads and stores and the Internet checksum (RFC 1071), shared by
// the codecs in src/wire. Private to the library.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tunnel::wire::inet {

inline std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

inline void put16(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// Adds the 16-bit big-endian words of [p, p + n) to `acc` (an odd last byte
// counts as its high half). Fold the result before use.
inline std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) noexcept {
  for (std::size_t i = 0; i + 1 < n; i += 2) acc += be16(p + i);
  if (n & 1) acc += std::uint32_t{p[n - 1]} << 8;
  return acc;
}

inline std::uint16_t fold(std::uint32_t acc) noexcept {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

// The header checksum an IPv4 sender computes for the 20-byte header at `h`
// (its own checksum field counts as zero).
inline std::uint16_t ipv4_header_checksum(const std::uint8_t* h) noexcept {
  const std::uint32_t acc = sum16(h, 10) + sum16(h + 12, 8);
  return static_cast<std::uint16_t>(~fold(acc));
}

}  // namespace tunnel::wire::inet
