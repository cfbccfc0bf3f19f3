// Bodies of the realtime frame types (docs/protocol.md, docs/realtime.md).
// The common 8-byte header (wire.hpp) precedes each body; all fields are
// big-endian. Pure: nothing here allocates or does I/O.
//
// Type 12, RT_DATA: one realtime packet on a realtime link.
//
//   0                               8
//   +-------------------------------+------------------------
//   |        realtime sequence      |  IP packet, unchanged ...
//   +-------------------------------+------------------------
//
//   The realtime sequence is per session and direction, not per link: the
//   same packet sent on several links carries the same number, and the
//   receiver keeps the first copy (first_copy.hpp). It starts at 0 for a new
//   session and continues across resumes. Realtime links are not replayed:
//   an RT_DATA frame carries no data sequence number and is not ACKed.
//
// Type 13, PROBE / PROBE_ACK: liveness and RTT of one realtime link.
//
//   0       1               4               8              16              24
//   +-------+---------------+---------------+---------------+---------------+
//   | kind  |  reserved (0) |      id       |   timestamp   |     mark      |
//   +-------+---------------+---------------+---------------+---------------+
//
//   kind 0 = PROBE, 1 = PROBE_ACK. The receiver of a PROBE answers at once on
//   the same link with a PROBE_ACK copying id, timestamp and mark. Timestamp
//   and mark are opaque to the responder: the prober puts its clock
//   (nanoseconds) and its next realtime sequence at the time of sending, so
//   an ACK gives an RTT sample and, TCP being in order, confirms every
//   RT_DATA sent on that link before the probe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tunnel::realtime {

inline constexpr std::uint8_t kRtDataType = 12;
inline constexpr std::uint8_t kProbeType = 13;
inline constexpr std::size_t kRseqSize = 8;
inline constexpr std::size_t kProbeBodySize = 24;
inline constexpr std::size_t kCommonHeaderSize = 8;  // wire::kHeaderSize
inline constexpr std::size_t kRtDataHeaderSize = kCommonHeaderSize + kRseqSize;
inline constexpr std::size_t kProbeFrameSize = kCommonHeaderSize + kProbeBodySize;

enum class BodyError : std::uint8_t {
  ok,
  bad_length,  // RT_DATA shorter than a sequence and a packet; PROBE not 24 bytes
  bad_packet,  // RT_DATA's packet is not one well-formed IPv4/IPv6 packet
  bad_kind,    // PROBE kind other than 0/1, or a reserved byte set
};
std::string_view to_string(BodyError e) noexcept;

struct RtData {
  std::uint64_t rseq = 0;
  std::span<const std::uint8_t> packet;  // points into the body
};

struct Probe {
  bool ack = false;
  std::uint32_t id = 0;
  std::uint64_t timestamp = 0;
  std::uint64_t mark = 0;
};

// Writes the common header and the sequence (kRtDataHeaderSize bytes) at
// `out`, for a packet of `packet_len` bytes that the caller places right after.
void encode_rt_data_header(std::uint8_t* out, std::uint64_t rseq, std::size_t packet_len) noexcept;

// Reads an RT_DATA body (the bytes after the common header).
BodyError parse_rt_data(std::span<const std::uint8_t> body, RtData& out) noexcept;

// Writes a whole PROBE or PROBE_ACK frame; `out` must hold kProbeFrameSize
// bytes. Returns kProbeFrameSize.
std::size_t encode_probe(std::uint8_t* out, const Probe& p) noexcept;

// Reads a PROBE body (the bytes after the common header).
BodyError parse_probe(std::span<const std::uint8_t> body, Probe& out) noexcept;

}  // namespace tunnel::realtime
