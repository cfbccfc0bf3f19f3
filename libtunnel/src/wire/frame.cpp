#include <tunnel/data_frame.hpp>
#include <tunnel/control_wire.hpp>
#include <tunnel/realtime_wire.hpp>
#include <tunnel/wire.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel::wire {
namespace {

constexpr std::size_t kMaxErrorReason = 256;

inline std::uint16_t load16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t load32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
inline std::uint64_t load64(const std::uint8_t* p) noexcept {
  return (std::uint64_t{load32(p)} << 32) | load32(p + 4);
}
inline void store16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void store32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
inline void store64(std::uint8_t* p, std::uint64_t v) noexcept {
  store32(p, static_cast<std::uint32_t>(v >> 32));
  store32(p + 4, static_cast<std::uint32_t>(v));
}

// Body size rules per type: {minimum, maximum} before the receiver's limit.
struct BodyRule {
  std::size_t min;
  std::size_t max;
};
constexpr BodyRule body_rule(FrameType t) noexcept {
  switch (t) {
    case FrameType::data: return {kDsnSize + 20, kDsnSize + kMaxPacket};  // 20: the first record is a whole packet
    case FrameType::ack: return {kDsnSize, kDsnSize};
    case FrameType::heartbeat:
    case FrameType::close: return {0, 0};
    case FrameType::error: return {0, kMaxErrorReason};
    case FrameType::hello:
    case FrameType::hello_ack:
    case FrameType::challenge: return {0, kMaxHandshakeBody};
    case FrameType::message: return {control::kMinMessageBody, control::kMaxMessageBody};
    case FrameType::result: return {control::kMinResultBody, control::kMaxResultBody};
    case FrameType::receipt: return {control::kReceiptSize, control::kReceiptSize};
    case FrameType::rt_data: return {realtime::kRseqSize + 20, realtime::kRseqSize + kMaxPacket};
    case FrameType::probe: return {realtime::kProbeBodySize, realtime::kProbeBodySize};
  }
  return {0, 0};
}

}  // namespace

std::string_view to_string(FrameType t) noexcept {
  switch (t) {
    case FrameType::data: return "DATA";
    case FrameType::hello: return "HELLO";
    case FrameType::hello_ack: return "HELLO_ACK";
    case FrameType::error: return "ERROR";
    case FrameType::heartbeat: return "HEARTBEAT";
    case FrameType::ack: return "ACK";
    case FrameType::close: return "CLOSE";
    case FrameType::challenge: return "CHALLENGE";
    case FrameType::message: return "MESSAGE";
    case FrameType::result: return "RESULT";
    case FrameType::receipt: return "RECEIPT";
    case FrameType::rt_data: return "RT_DATA";
    case FrameType::probe: return "PROBE";
  }
  return "UNKNOWN";
}

std::string_view to_string(ParseStatus s) noexcept {
  switch (s) {
    case ParseStatus::ok: return "ok";
    case ParseStatus::need_more: return "need_more";
    case ParseStatus::bad_version: return "bad_version";
    case ParseStatus::bad_type: return "bad_type";
    case ParseStatus::bad_flags: return "bad_flags";
    case ParseStatus::bad_length: return "bad_length";
    case ParseStatus::bad_packet: return "bad_packet";
    case ParseStatus::bad_control: return "bad_control";
  }
  return "unknown";
}

ParseResult parse_frame(std::span<const std::uint8_t> in, const Limits& limits) noexcept {
  ParseResult r;
  // The version and type can be judged from the first bytes; reject garbage
  // early rather than wait for a length that may never come.
  if (in.empty()) return r;
  if (in[0] < limits.min_version || in[0] > limits.max_version) {
    r.status = ParseStatus::bad_version;
    return r;
  }
  if (in.size() < 2) return r;
  if (in[1] == 0 || in[1] > (in[0] >= 4 ? kMaxFrameType : kMaxFrameTypeV3)) {
    r.status = ParseStatus::bad_type;
    return r;
  }
  if (in.size() < kHeaderSize) return r;

  const auto type = static_cast<FrameType>(in[1]);
  const std::uint16_t flags = load16(&in[2]);
  const std::uint32_t body_len = load32(&in[4]);
  if (flags != 0) {  // versions 3 and 4 define no flags
    r.status = ParseStatus::bad_flags;
    return r;
  }
  const BodyRule rule = body_rule(type);
  if (body_len < rule.min || body_len > rule.max || body_len > limits.max_body) {
    r.status = ParseStatus::bad_length;
    return r;
  }
  if (in.size() - kHeaderSize < body_len) return r;  // need_more

  const auto body = in.subspan(kHeaderSize, body_len);
  r.frame.version = in[0];
  r.frame.type = type;
  r.frame.flags = flags;
  r.frame.body = body;
  if (type == FrameType::data || type == FrameType::ack) {
    r.frame.dsn = load64(body.data());
    r.frame.body = body.subspan(kDsnSize);
  }
  if (type == FrameType::data) {
    r.frame.packets = static_cast<std::uint32_t>(count_records(r.frame.body));
    if (r.frame.packets == 0) {
      r.status = ParseStatus::bad_packet;
      r.frame = {};
      return r;
    }
  }
  r.status = ParseStatus::ok;
  r.consumed = kHeaderSize + body_len;
  return r;
}

void encode_header(std::uint8_t* out, FrameType type, std::uint16_t flags, std::uint32_t body_len,
                   std::uint8_t version) noexcept {
  out[0] = version;
  out[1] = static_cast<std::uint8_t>(type);
  store16(out + 2, flags);
  store32(out + 4, body_len);
}

void encode_data_header(std::uint8_t* out, std::uint64_t dsn, std::size_t records_len,
                        std::uint8_t version) noexcept {
  encode_header(out, FrameType::data, 0, static_cast<std::uint32_t>(kDsnSize + records_len), version);
  store64(out + kHeaderSize, dsn);
}

std::size_t encode_ack(std::uint8_t* out, std::uint64_t dsn, std::uint8_t version) noexcept {
  encode_header(out, FrameType::ack, 0, kDsnSize, version);
  store64(out + kHeaderSize, dsn);
  return kHeaderSize + kDsnSize;
}

std::size_t encode_empty(std::uint8_t* out, FrameType type, std::uint8_t version) noexcept {
  encode_header(out, type, 0, 0, version);
  return kHeaderSize;
}

std::size_t encode_error(std::uint8_t* out, std::string_view reason, std::uint8_t version) noexcept {
  const std::size_t n = std::min(reason.size(), kMaxErrorReason);
  encode_header(out, FrameType::error, 0, static_cast<std::uint32_t>(n), version);
  std::memcpy(out + kHeaderSize, reason.data(), n);
  return kHeaderSize + n;
}

}  // namespace tunnel::wire
