// Frame codec for the tunnel byte stream (docs/protocol.md, versions 3 and 4).
//
// Pure: bytes in, frames out. Nothing here does I/O, allocates or logs, so it
// can be unit-tested and fuzzed on its own.
//
// Every frame starts with an 8-byte common header, all fields big-endian:
//
//   0       1       2               4                               8
//   +-------+-------+---------------+-------------------------------+
//   |version| type  |     flags     |          body length          |
//   +-------+-------+---------------+-------------------------------+
//
// A DATA frame's body is the 8-byte data sequence number of its first packet
// followed by one or more records, each a packet unchanged or a compressed UDP
// datagram (data_frame.hpp). A frame of one packet is that packet unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tunnel::wire {

// The newest version this build speaks, and the oldest it still serves. The
// version of a connection is chosen in its handshake (handshake_codec.hpp);
// frame layouts are the same in both, version 4 adds fields to the handshake.
inline constexpr std::uint8_t kVersion = 4;
inline constexpr std::uint8_t kMinVersion = 3;
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kDsnSize = 8;
inline constexpr std::size_t kDataHeaderSize = kHeaderSize + kDsnSize;
// Largest IP packet a DATA frame may carry (IPv4 total length is 16 bits),
// and the largest records part of a DATA body.
inline constexpr std::size_t kMaxPacket = 65535;

enum class FrameType : std::uint8_t {
  data = 1,       // body: dsn(8) of the first packet + records (data_frame.hpp)
  hello = 2,      // CPE -> gateway: identity, resume request, proof (handshake_codec.hpp)
  hello_ack = 3,  // gateway -> CPE: session ID, resume point, proof (handshake_codec.hpp)
  error = 4,      // body: UTF-8 reason, the sender closes after it
  heartbeat = 5,  // body: empty
  ack = 6,        // body: cumulative dsn(8): every DATA frame up to it arrived
  close = 7,      // body: empty; the sender ends the session
  challenge = 8,  // gateway -> CPE, first frame on a connection: nonce (handshake_codec.hpp)
  // Version 4 only (a version 3 connection refuses them as bad_type):
  message = 9,    // control message (control_wire.hpp)
  result = 10,    // control result (control_wire.hpp)
  receipt = 11,   // control receipt (control_wire.hpp)
  rt_data = 12,   // realtime packet with its session-level sequence (realtime_wire.hpp)
  probe = 13,     // liveness probe or its answer (realtime_wire.hpp)
};
inline constexpr std::uint8_t kMaxFrameType = 13;
inline constexpr std::uint8_t kMaxFrameTypeV3 = 8;
// Largest HELLO/HELLO_ACK/CHALLENGE body.
inline constexpr std::size_t kMaxHandshakeBody = 4096;
// Largest body of any frame type (a control message: control_wire.hpp).
inline constexpr std::size_t kMaxBody = 65617;  // == control::kMaxMessageBody

std::string_view to_string(FrameType t) noexcept;

// Why a byte sequence is not a valid frame. Every value except `ok` and
// `need_more` means the stream is corrupt and the connection must be closed.
enum class ParseStatus : std::uint8_t {
  ok,            // a whole frame was parsed; `consumed` bytes belong to it
  need_more,     // not enough bytes yet; read more and call again
  bad_version,   // version byte outside [Limits::min_version, Limits::max_version]
  bad_type,      // unknown frame type
  bad_flags,     // a flag bit that this version does not define is set
  bad_length,    // body length exceeds the receiver's limit or the type's size
  bad_packet,    // a DATA record is not a well-formed packet or a valid compressed one
  bad_control,   // never from parse_frame: a whole control frame (types 9-11) that the control
                 // layer refused (its body, its sequence; control_channel.hpp, ChannelError)
};
inline constexpr int kParseStatusCount = 8;

std::string_view to_string(ParseStatus s) noexcept;

struct Limits {
  // Largest body the receiver accepts, for any frame type. For DATA this is
  // kDsnSize + the largest packet expected (the peer's MTU).
  std::size_t max_body = kMaxBody;
  // Versions accepted in the version byte: the connection's one after the
  // handshake, the range this build speaks during it.
  std::uint8_t min_version = kVersion;
  std::uint8_t max_version = kVersion;
};

struct Frame {
  std::uint8_t version = 0;
  FrameType type{};
  std::uint16_t flags = 0;
  std::uint64_t dsn = 0;                // DATA: the first packet's; ACK: the acknowledged one
  std::span<const std::uint8_t> body;   // DATA: the records (read them with DataReader); others: whole body
  std::uint32_t packets = 0;            // DATA: how many packets the records hold (at least 1)
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  std::size_t consumed = 0;  // bytes of `in` used by the frame when status == ok
  Frame frame;
};

// Parses the first frame in `in`. The frame's body span points into `in`.
// Length fields are validated before any body byte is examined; a DATA
// frame's records are all checked (count_records) before it is returned.
ParseResult parse_frame(std::span<const std::uint8_t> in, const Limits& limits) noexcept;

// Writes a common header at `out`, which must hold kHeaderSize bytes.
void encode_header(std::uint8_t* out, FrameType type, std::uint16_t flags, std::uint32_t body_len,
                   std::uint8_t version = kVersion) noexcept;

// Writes a DATA frame's header (kDataHeaderSize bytes) at `out`, for
// `records_len` bytes of records (one packet: the packet) that the caller
// places right after it.
void encode_data_header(std::uint8_t* out, std::uint64_t dsn, std::size_t records_len,
                        std::uint8_t version = kVersion) noexcept;

// Writes a whole frame with an 8-byte sequence body (ACK). `out` must hold
// kHeaderSize + kDsnSize bytes. Returns the bytes written.
std::size_t encode_ack(std::uint8_t* out, std::uint64_t dsn, std::uint8_t version = kVersion) noexcept;

// Writes a frame with an empty body (HEARTBEAT, CLOSE). `out` must hold
// kHeaderSize bytes. Returns the bytes written.
std::size_t encode_empty(std::uint8_t* out, FrameType type, std::uint8_t version = kVersion) noexcept;

// Writes an ERROR frame carrying `reason` (truncated to 256 bytes). `out` must
// hold kHeaderSize + 256 bytes. Returns the bytes written.
std::size_t encode_error(std::uint8_t* out, std::string_view reason, std::uint8_t version = kVersion) noexcept;

}  // namespace tunnel::wire
