#include <tunnel/ip_packet.hpp>
#include <tunnel/realtime_wire.hpp>
#include <tunnel/wire.hpp>

namespace tunnel::realtime {

static_assert(kCommonHeaderSize == wire::kHeaderSize);

std::string_view to_string(BodyError e) noexcept {
  switch (e) {
    case BodyError::ok: return "ok";
    case BodyError::bad_length: return "realtime frame body has the wrong length";
    case BodyError::bad_packet: return "RT_DATA does not carry one well-formed IP packet";
    case BodyError::bad_kind: return "PROBE kind unknown or reserved bytes set";
  }
  return "unknown realtime body error";
}

namespace {

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) { p[i] = static_cast<std::uint8_t>(v); v >>= 8; }
}
void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) { p[i] = static_cast<std::uint8_t>(v); v >>= 8; }
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}
std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}

}  // namespace

void encode_rt_data_header(std::uint8_t* out, std::uint64_t rseq, std::size_t packet_len) noexcept {
  wire::encode_header(out, static_cast<wire::FrameType>(kRtDataType), 0,
                      static_cast<std::uint32_t>(kRseqSize + packet_len));
  put64(out + kCommonHeaderSize, rseq);
}

BodyError parse_rt_data(std::span<const std::uint8_t> body, RtData& out) noexcept {
  if (body.size() <= kRseqSize) return BodyError::bad_length;
  out.rseq = get64(body.data());
  out.packet = body.subspan(kRseqSize);
  return ip::well_formed(out.packet) ? BodyError::ok : BodyError::bad_packet;
}

std::size_t encode_probe(std::uint8_t* out, const Probe& p) noexcept {
  wire::encode_header(out, static_cast<wire::FrameType>(kProbeType), 0, kProbeBodySize);
  std::uint8_t* b = out + kCommonHeaderSize;
  b[0] = p.ack ? 1 : 0;
  b[1] = b[2] = b[3] = 0;
  put32(b + 4, p.id);
  put64(b + 8, p.timestamp);
  put64(b + 16, p.mark);
  return kProbeFrameSize;
}

BodyError parse_probe(std::span<const std::uint8_t> body, Probe& out) noexcept {
  if (body.size() != kProbeBodySize) return BodyError::bad_length;
  if (body[0] > 1 || body[1] || body[2] || body[3]) return BodyError::bad_kind;
  out.ack = body[0] == 1;
  out.id = get32(&body[4]);
  out.timestamp = get64(&body[8]);
  out.mark = get64(&body[16]);
  return BodyError::ok;
}

}  // namespace tunnel::realtime
