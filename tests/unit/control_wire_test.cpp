// Control frame bodies: round trips, the limits the frame parser must
// enforce, and every malformed body rejected with its reason.
#include <tunnel/control_wire.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {
using namespace tunnel::control;
using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// The body of the single frame in `f` after checking its header.
std::span<const std::uint8_t> body_of(const Bytes& f, std::uint8_t type) {
  EXPECT_GE(f.size(), tunnel::wire::kHeaderSize);
  EXPECT_EQ(f[0], tunnel::wire::kVersion);
  EXPECT_EQ(f[1], type);
  EXPECT_EQ(f[2], 0);
  EXPECT_EQ(f[3], 0);
  const std::size_t len = (std::size_t{f[4]} << 24) | (std::size_t{f[5]} << 16) | (std::size_t{f[6]} << 8) | f[7];
  EXPECT_EQ(len, f.size() - tunnel::wire::kHeaderSize);
  return std::span<const std::uint8_t>(f).subspan(tunnel::wire::kHeaderSize);
}

Bytes message_body(std::uint64_t id, std::uint64_t seq, std::string_view topic, const Bytes& body) {
  Bytes f;
  EXPECT_EQ(encode_message(f, MessageView{id, seq, topic, body}), BodyError::ok);
  return Bytes(f.begin() + tunnel::wire::kHeaderSize, f.end());
}

TEST(ControlWire, FrameLimitsForTheParser) {
  EXPECT_EQ(kMaxMessageBody, 65617u);
  EXPECT_EQ(kMaxResultBody, 65556u);
  EXPECT_EQ(kMinMessageBody, 18u);
  EXPECT_EQ(kMinResultBody, 20u);
  EXPECT_EQ(kReceiptSize, 8u);
  EXPECT_EQ(static_cast<std::uint8_t>(tunnel::wire::FrameType::message), kMessageType);
  EXPECT_EQ(static_cast<std::uint8_t>(tunnel::wire::FrameType::receipt), kReceiptType);
  EXPECT_EQ(tunnel::wire::kMaxBody, kMaxMessageBody);
  // The parser takes a receipt of exactly its size and nothing longer.
  Bytes f(tunnel::wire::kHeaderSize + kReceiptSize, 1);
  tunnel::wire::encode_header(f.data(), tunnel::wire::FrameType::receipt, 0, kReceiptSize);
  EXPECT_EQ(tunnel::wire::parse_frame(f, {}).status, tunnel::wire::ParseStatus::ok);
  f.push_back(0);
  tunnel::wire::encode_header(f.data(), tunnel::wire::FrameType::receipt, 0, kReceiptSize + 1);
  EXPECT_EQ(tunnel::wire::parse_frame(f, {}).status, tunnel::wire::ParseStatus::bad_length);
}

TEST(ControlWire, MessageRoundTripAtTheLimits) {
  const std::string topic(kMaxTopic, 'a');
  const Bytes payload(kMaxControlBody, 0x5a);
  Bytes f;
  ASSERT_EQ(encode_message(f, MessageView{0x0102030405060708, 77, topic, payload}), BodyError::ok);
  const auto body = body_of(f, kMessageType);
  EXPECT_EQ(body.size(), kMaxMessageBody);
  MessageView m;
  ASSERT_EQ(decode_message(body, m), BodyError::ok);
  EXPECT_EQ(m.msg_id, 0x0102030405060708u);
  EXPECT_EQ(m.seq, 77u);
  EXPECT_EQ(m.topic, topic);
  EXPECT_TRUE(std::equal(m.body.begin(), m.body.end(), payload.begin(), payload.end()));
}

TEST(ControlWire, MessageWithEmptyBody) {
  Bytes f;
  ASSERT_EQ(encode_message(f, MessageView{1, 1, "x", {}}), BodyError::ok);
  const auto body = body_of(f, kMessageType);
  EXPECT_EQ(body.size(), kMinMessageBody);
  MessageView m;
  ASSERT_EQ(decode_message(body, m), BodyError::ok);
  EXPECT_EQ(m.topic, "x");
  EXPECT_TRUE(m.body.empty());
}

TEST(ControlWire, ResultRoundTrip) {
  const Bytes out = bytes_of("line1\nline2");
  for (std::int16_t ex : {std::int16_t{-1}, std::int16_t{0}, std::int16_t{137}, std::int16_t{255}}) {
    Bytes f;
    ASSERT_EQ(encode_result(f, ResultView{9, 3, Status::failed, true, ex, out}), BodyError::ok);
    ResultView r;
    ASSERT_EQ(decode_result(body_of(f, kResultType), r), BodyError::ok);
    EXPECT_EQ(r.msg_id, 9u);
    EXPECT_EQ(r.seq, 3u);
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_TRUE(r.truncated);
    EXPECT_EQ(r.exit_code, ex);
    EXPECT_EQ(Bytes(r.body.begin(), r.body.end()), out);
  }
  Bytes f;
  const Bytes big(kMaxControlBody, 1);
  ASSERT_EQ(encode_result(f, ResultView{1, 1, Status::done, false, 0, big}), BodyError::ok);
  EXPECT_EQ(body_of(f, kResultType).size(), kMaxResultBody);
}

TEST(ControlWire, ReceiptRoundTrip) {
  Bytes f;
  encode_receipt(f, 0xfedcba9876543210);
  std::uint64_t seq = 0;
  ASSERT_EQ(decode_receipt(body_of(f, kReceiptType), seq), BodyError::ok);
  EXPECT_EQ(seq, 0xfedcba9876543210u);
}

TEST(ControlWire, TopicRules) {
  for (std::string_view ok : {"a", "tunneld.ping", "set_config-2", "A.b_C-9", "_x", ".x"})
    EXPECT_TRUE(valid_topic(ok)) << ok;
  const std::string longest(64, 'z'), too_long(65, 'z');
  EXPECT_TRUE(valid_topic(longest));
  EXPECT_FALSE(valid_topic(too_long));
  for (std::string_view bad : {"", "-x", "a b", "a/b", "ä", "a\n", "a;rm", "$x"}) EXPECT_FALSE(valid_topic(bad)) << bad;
}

TEST(ControlWire, MalformedMessagesRejected) {
  const Bytes good = message_body(5, 6, "topic", bytes_of("body"));
  MessageView m;
  ASSERT_EQ(decode_message(good, m), BodyError::ok);

  auto with = [&](std::size_t at, std::uint8_t v) {
    Bytes b = good;
    b[at] = v;
    return b;
  };
  EXPECT_EQ(decode_message(Bytes(good.begin(), good.begin() + 17), m), BodyError::bad_length);
  EXPECT_EQ(decode_message(Bytes{}, m), BodyError::bad_length);
  Bytes zero_id = good;
  std::fill(zero_id.begin(), zero_id.begin() + 8, 0);
  EXPECT_EQ(decode_message(zero_id, m), BodyError::bad_id);
  Bytes zero_seq = good;
  std::fill(zero_seq.begin() + 8, zero_seq.begin() + 16, 0);
  EXPECT_EQ(decode_message(zero_seq, m), BodyError::bad_id);
  EXPECT_EQ(decode_message(with(16, 0), m), BodyError::bad_topic);     // empty topic
  EXPECT_EQ(decode_message(with(16, 65), m), BodyError::bad_topic);    // longer than allowed
  EXPECT_EQ(decode_message(with(16, 10), m), BodyError::bad_topic);    // past the body's end
  EXPECT_EQ(decode_message(with(17, '-'), m), BodyError::bad_topic);   // leading '-'
  EXPECT_EQ(decode_message(with(18, ' '), m), BodyError::bad_topic);   // bad character
  EXPECT_EQ(decode_message(with(18, 0), m), BodyError::bad_topic);

  // One byte over the largest body.
  Bytes over = message_body(1, 1, "t", Bytes(kMaxControlBody, 0));
  over.push_back(0);
  EXPECT_EQ(decode_message(over, m), BodyError::bad_length);
  // Short topic, body over 64 KiB but the frame within kMaxMessageBody.
  Bytes sneaky = message_body(1, 1, std::string(64, 't'), Bytes(kMaxControlBody, 0));
  sneaky[16] = 1;
  EXPECT_EQ(decode_message(sneaky, m), BodyError::bad_length);
}

TEST(ControlWire, MalformedResultsRejected) {
  Bytes f;
  ASSERT_EQ(encode_result(f, ResultView{5, 6, Status::done, false, 0, bytes_of("out")}), BodyError::ok);
  const Bytes good(f.begin() + tunnel::wire::kHeaderSize, f.end());
  ResultView r;
  ASSERT_EQ(decode_result(good, r), BodyError::ok);
  auto with = [&](std::size_t at, std::uint8_t v) {
    Bytes b = good;
    b[at] = v;
    return b;
  };
  EXPECT_EQ(decode_result(Bytes(good.begin(), good.begin() + 19), r), BodyError::bad_length);
  EXPECT_EQ(decode_result(with(16, 6), r), BodyError::bad_status);
  EXPECT_EQ(decode_result(with(16, 0xff), r), BodyError::bad_status);
  EXPECT_EQ(decode_result(with(17, 0x02), r), BodyError::bad_flags);
  EXPECT_EQ(decode_result(with(17, 0x80), r), BodyError::bad_flags);
  EXPECT_EQ(decode_result(with(18, 0x01), r), BodyError::bad_exit);  // 256 + 0
  Bytes minus2 = with(18, 0xff);
  minus2[19] = 0xfe;
  EXPECT_EQ(decode_result(minus2, r), BodyError::bad_exit);
  Bytes zero_id = good;
  std::fill(zero_id.begin(), zero_id.begin() + 8, 0);
  EXPECT_EQ(decode_result(zero_id, r), BodyError::bad_id);
  Bytes over = good;
  over.resize(kMaxResultBody + 1);
  EXPECT_EQ(decode_result(over, r), BodyError::bad_length);
}

TEST(ControlWire, MalformedReceiptsRejected) {
  std::uint64_t seq;
  EXPECT_EQ(decode_receipt(Bytes(7, 1), seq), BodyError::bad_length);
  EXPECT_EQ(decode_receipt(Bytes(9, 1), seq), BodyError::bad_length);
  EXPECT_EQ(decode_receipt(Bytes(8, 0), seq), BodyError::bad_id);
}

TEST(ControlWire, EncodersRefuseInvalidFieldsAndAppendNothing) {
  Bytes f{1, 2, 3};
  EXPECT_EQ(encode_message(f, MessageView{0, 1, "t", {}}), BodyError::bad_id);
  EXPECT_EQ(encode_message(f, MessageView{1, 0, "t", {}}), BodyError::bad_id);
  EXPECT_EQ(encode_message(f, MessageView{1, 1, "-t", {}}), BodyError::bad_topic);
  const Bytes big(kMaxControlBody + 1, 0);
  EXPECT_EQ(encode_message(f, MessageView{1, 1, "t", big}), BodyError::bad_length);
  EXPECT_EQ(encode_result(f, ResultView{1, 1, Status::done, false, 256, {}}), BodyError::bad_exit);
  EXPECT_EQ(encode_result(f, ResultView{1, 1, static_cast<Status>(9), false, 0, {}}), BodyError::bad_status);
  EXPECT_EQ(encode_result(f, ResultView{1, 1, Status::done, false, 0, big}), BodyError::bad_length);
  EXPECT_EQ(f, (Bytes{1, 2, 3}));
}

TEST(ControlWire, RandomBodiesNeverReadOutOfBounds) {
  std::mt19937_64 rng(7);
  Bytes buf;
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    buf.resize(rng() % 120);
    for (auto& b : buf) b = static_cast<std::uint8_t>(rng() % 4 ? rng() : 'a');
    if (buf.size() > 16 && i % 2) buf[16] = static_cast<std::uint8_t>(rng() % 8);
    MessageView m;
    ResultView r;
    std::uint64_t s;
    if (decode_message(buf, m) == BodyError::ok) {
      ++ok;
      EXPECT_TRUE(valid_topic(m.topic));
      EXPECT_EQ(m.body.data() + m.body.size(), buf.data() + buf.size());
    }
    if (decode_result(buf, r) == BodyError::ok) {
      EXPECT_LE(static_cast<int>(r.status), kMaxStatus);
    }
    (void)decode_receipt(buf, s);
  }
  EXPECT_GT(ok, 0);
}

}  // namespace
