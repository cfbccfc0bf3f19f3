#include <tunnel/control_wire.hpp>
#include <tunnel/wire.hpp>

namespace tunnel::control {
namespace {

std::uint64_t load64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
void put64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_header(std::vector<std::uint8_t>& out, std::uint8_t type, std::size_t body_len) {
  const std::size_t at = out.size();
  out.resize(at + wire::kHeaderSize);
  wire::encode_header(&out[at], static_cast<wire::FrameType>(type), 0, static_cast<std::uint32_t>(body_len));
}

bool topic_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

BodyError check_result(const ResultView& r) noexcept {
  if (r.msg_id == 0 || r.seq == 0) return BodyError::bad_id;
  if (static_cast<std::uint8_t>(r.status) > kMaxStatus) return BodyError::bad_status;
  if (r.exit_code < -1 || r.exit_code > 255) return BodyError::bad_exit;
  if (r.body.size() > kMaxControlBody) return BodyError::bad_length;
  return BodyError::ok;
}

}  // namespace

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::done: return "done";
    case Status::failed: return "failed";
    case Status::timeout: return "timeout";
    case Status::busy: return "busy";
    case Status::no_handler: return "no-handler";
    case Status::session_ended: return "session-ended";
  }
  return "invalid";
}

std::string_view to_string(BodyError e) noexcept {
  switch (e) {
    case BodyError::ok: return "ok";
    case BodyError::bad_length: return "bad_length";
    case BodyError::bad_id: return "bad_id";
    case BodyError::bad_topic: return "bad_topic";
    case BodyError::bad_status: return "bad_status";
    case BodyError::bad_flags: return "bad_flags";
    case BodyError::bad_exit: return "bad_exit";
    case BodyError::bad_type: return "bad_type";
  }
  return "invalid";
}

bool valid_topic(std::string_view topic) noexcept {
  if (topic.empty() || topic.size() > kMaxTopic || topic.front() == '-') return false;
  for (char c : topic)
    if (!topic_char(c)) return false;
  return true;
}

BodyError decode_message(std::span<const std::uint8_t> body, MessageView& out) noexcept {
  if (body.size() < kMinMessageBody || body.size() > kMaxMessageBody) return BodyError::bad_length;
  out.msg_id = load64(body.data());
  out.seq = load64(body.data() + 8);
  if (out.msg_id == 0 || out.seq == 0) return BodyError::bad_id;
  const std::size_t tlen = body[16];
  if (tlen == 0 || tlen > kMaxTopic || tlen > body.size() - kMessageFixed) return BodyError::bad_topic;
  out.topic = {reinterpret_cast<const char*>(body.data() + kMessageFixed), tlen};
  if (!valid_topic(out.topic)) return BodyError::bad_topic;
  out.body = body.subspan(kMessageFixed + tlen);
  if (out.body.size() > kMaxControlBody) return BodyError::bad_length;
  return BodyError::ok;
}

BodyError decode_result(std::span<const std::uint8_t> body, ResultView& out) noexcept {
  if (body.size() < kMinResultBody || body.size() > kMaxResultBody) return BodyError::bad_length;
  out.msg_id = load64(body.data());
  out.seq = load64(body.data() + 8);
  if (out.msg_id == 0 || out.seq == 0) return BodyError::bad_id;
  if (body[16] > kMaxStatus) return BodyError::bad_status;
  out.status = static_cast<Status>(body[16]);
  if (body[17] & ~kResultTruncated) return BodyError::bad_flags;
  out.truncated = (body[17] & kResultTruncated) != 0;
  out.exit_code = static_cast<std::int16_t>(static_cast<std::uint16_t>((body[18] << 8) | body[19]));
  if (out.exit_code < -1 || out.exit_code > 255) return BodyError::bad_exit;
  out.body = body.subspan(kResultFixed);
  return BodyError::ok;
}

BodyError decode_receipt(std::span<const std::uint8_t> body, std::uint64_t& seq) noexcept {
  if (body.size() != kReceiptSize) return BodyError::bad_length;
  seq = load64(body.data());
  return seq == 0 ? BodyError::bad_id : BodyError::ok;
}

BodyError encode_message(std::vector<std::uint8_t>& out, const MessageView& m) {
  if (m.msg_id == 0 || m.seq == 0) return BodyError::bad_id;
  if (!valid_topic(m.topic)) return BodyError::bad_topic;
  if (m.body.size() > kMaxControlBody) return BodyError::bad_length;
  out.reserve(out.size() + wire::kHeaderSize + kMessageFixed + m.topic.size() + m.body.size());
  put_header(out, kMessageType, kMessageFixed + m.topic.size() + m.body.size());
  put64(out, m.msg_id);
  put64(out, m.seq);
  out.push_back(static_cast<std::uint8_t>(m.topic.size()));
  out.insert(out.end(), m.topic.begin(), m.topic.end());
  out.insert(out.end(), m.body.begin(), m.body.end());
  return BodyError::ok;
}

BodyError encode_result(std::vector<std::uint8_t>& out, const ResultView& r) {
  if (const BodyError e = check_result(r); e != BodyError::ok) return e;
  out.reserve(out.size() + wire::kHeaderSize + kResultFixed + r.body.size());
  put_header(out, kResultType, kResultFixed + r.body.size());
  put64(out, r.msg_id);
  put64(out, r.seq);
  out.push_back(static_cast<std::uint8_t>(r.status));
  out.push_back(r.truncated ? kResultTruncated : 0);
  const auto ex = static_cast<std::uint16_t>(r.exit_code);
  out.push_back(static_cast<std::uint8_t>(ex >> 8));
  out.push_back(static_cast<std::uint8_t>(ex));
  out.insert(out.end(), r.body.begin(), r.body.end());
  return BodyError::ok;
}

void encode_receipt(std::vector<std::uint8_t>& out, std::uint64_t seq) {
  put_header(out, kReceiptType, kReceiptSize);
  put64(out, seq);
}

}  // namespace tunnel::control
