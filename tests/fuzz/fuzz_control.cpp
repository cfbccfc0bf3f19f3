// libFuzzer target for the control frame bodies (control_wire.hpp): every
// body a decoder accepts stays within the input and encodes back to exactly
// the same bytes. The first input byte picks the decoder; with its top bit
// set the rest of the input is first turned into a valid body (so that
// random inputs, as the gcc replay feeds, reach the deep checks) and then
// has a few bytes overwritten.
#include <tunnel/control_wire.hpp>
#include <tunnel/wire.hpp>

#include <cstdlib>
#include <string>
#include <vector>

namespace {
namespace c = tunnel::control;
using Bytes = std::vector<std::uint8_t>;

Bytes strip(const Bytes& frame) { return Bytes(frame.begin() + tunnel::wire::kHeaderSize, frame.end()); }

// A valid body of `kind` built from `in`.
Bytes build(int kind, const std::uint8_t* in, std::size_t n) {
  static constexpr char kChars[] = "abcXYZ019._-";
  Bytes f;
  const std::uint64_t id = n > 0 ? in[0] + 1u : 1u;
  if (kind == 0) {
    std::string topic;
    for (std::size_t i = 0; i < n && topic.size() < 1 + (n % 64); ++i) topic += kChars[in[i] % 12];
    if (topic.empty() || topic[0] == '-') topic.insert(topic.begin(), 'a');
    if (topic.size() > c::kMaxTopic) topic.resize(c::kMaxTopic);
    (void)c::encode_message(f, c::MessageView{id, id * 3, topic, {in, n}});
  } else if (kind == 1) {
    const auto st = static_cast<c::Status>(n % (c::kMaxStatus + 1));
    const auto ex = static_cast<std::int16_t>(n > 1 ? in[1] : -1);
    (void)c::encode_result(f, c::ResultView{id, id + 1, st, (n & 1) != 0, ex, {in, n}});
  } else {
    c::encode_receipt(f, id);
  }
  return strip(f);
}

void check(int kind, const Bytes& body) {
  Bytes again;
  if (kind == 0) {
    c::MessageView m;
    if (c::decode_message(body, m) != c::BodyError::ok) return;
    if (!c::valid_topic(m.topic) || m.body.size() > c::kMaxControlBody) std::abort();
    if (m.body.data() + m.body.size() != body.data() + body.size()) std::abort();
    if (c::encode_message(again, m) != c::BodyError::ok) std::abort();
  } else if (kind == 1) {
    c::ResultView r;
    if (c::decode_result(body, r) != c::BodyError::ok) return;
    if (c::encode_result(again, r) != c::BodyError::ok) std::abort();
  } else {
    std::uint64_t seq = 0;
    if (c::decode_receipt(body, seq) != c::BodyError::ok) return;
    c::encode_receipt(again, seq);
  }
  if (strip(again) != body) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int kind = (data[0] & 0x7f) % 3;
  const std::uint8_t* rest = data + 1;
  const std::size_t n = size - 1;
  if (!(data[0] & 0x80)) {
    check(kind, Bytes(rest, rest + n));
    return 0;
  }
  Bytes body = build(kind, rest, n);
  check(kind, body);
  // Overwrite up to four bytes named by the input's first bytes.
  for (std::size_t i = 0; i + 1 < std::min<std::size_t>(n, 8) && !body.empty(); i += 2)
    body[rest[i] % body.size()] = rest[i + 1];
  check(kind, body);
  return 0;
}
