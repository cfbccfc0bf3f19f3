// Bodies of the control frames (docs/protocol.md, "Control messages"): MESSAGE, RESULT
// and RECEIPT, carried in the common 8-byte frame header of wire.hpp.
//
// Pure: bytes in, values out. Decoders never allocate and return views into
// the body they were given; encoders append one whole frame (header and body)
// to a byte vector, which control messages may allocate.
//
// All integers are big-endian. Both directions use the same frames: the
// gateway sends MESSAGEs to CPEs and a CPE to its gateway.
//
//   MESSAGE  (type 9)   msg_id(8) seq(8) topic_len(1) topic(topic_len) body(rest)
//   RESULT   (type 10)  msg_id(8) seq(8) status(1) flags(1) exit(2, signed) body(rest)
//   RECEIPT  (type 11)  seq(8): every item of the sender's sequence up to it arrived
//
// - msg_id: the correlation id, chosen by the message's sender, unique per
//   sender; a RESULT carries the msg_id of the MESSAGE it answers. Never 0.
// - seq: the sender's per-session item sequence (MESSAGEs and RESULTs share
//   it), 1, 2, 3, ...; RECEIPTs and duplicate suppression use it. Never 0.
// - topic: 1 to 64 bytes of [A-Za-z0-9._-], not starting with '-'.
// - status: Status below; flags: bit 0 = the body was truncated, others 0.
// - exit: the handler's exit code (0-255, 128+signal), or -1 for none.
// - body: at most kMaxControlBody bytes, opaque.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tunnel::control {

inline constexpr std::uint8_t kMessageType = 9;
inline constexpr std::uint8_t kResultType = 10;
inline constexpr std::uint8_t kReceiptType = 11;

inline constexpr std::size_t kMaxControlBody = 65536;  // message or result payload
inline constexpr std::size_t kMaxTopic = 64;
inline constexpr std::size_t kMessageFixed = 8 + 8 + 1;       // before the topic
inline constexpr std::size_t kResultFixed = 8 + 8 + 1 + 1 + 2; // before the body
inline constexpr std::size_t kReceiptSize = 8;
// Frame body length rules the frame parser must enforce before reading a body:
inline constexpr std::size_t kMinMessageBody = kMessageFixed + 1;
inline constexpr std::size_t kMaxMessageBody = kMessageFixed + kMaxTopic + kMaxControlBody;  // 65617
inline constexpr std::size_t kMinResultBody = kResultFixed;
inline constexpr std::size_t kMaxResultBody = kResultFixed + kMaxControlBody;                // 65556

inline constexpr std::uint8_t kResultTruncated = 0x01;
inline constexpr std::int16_t kNoExit = -1;

// How a message ended. Values are the wire encoding.
enum class Status : std::uint8_t {
  done = 0,           // the handler ran and exited (any exit code), or a built-in answered
  failed = 1,         // the handler could not start (exit 127) or died by a signal (128 + signal)
  timeout = 2,        // the handler outlived its time and was killed, or no result came in time
  busy = 3,           // the receiver's queue was full; the message was not run
  no_handler = 4,     // nothing handles this topic; the message was not run
  session_ended = 5,  // the session ended before the message was answered
};
inline constexpr std::uint8_t kMaxStatus = 5;
std::string_view to_string(Status s) noexcept;  // "done", "failed", ..., "session-ended"

// Why a control body is not valid. Every value except `ok` is a protocol
// error: the connection is closed (and the session resumed).
enum class BodyError : std::uint8_t {
  ok,
  bad_length,   // shorter than the fixed part, or longer than the type allows
  bad_id,       // msg_id or seq is 0
  bad_topic,    // topic length 0 or > 64, past the body's end, or a bad character
  bad_status,   // status value above kMaxStatus
  bad_flags,    // an undefined flag bit is set
  bad_exit,     // exit code outside -1..255
  bad_type,     // not a control frame type (9, 10, 11)
};
inline constexpr int kBodyErrorCount = 8;
std::string_view to_string(BodyError e) noexcept;

// True when `topic` is 1-64 characters of [A-Za-z0-9._-] not starting with '-'.
bool valid_topic(std::string_view topic) noexcept;

// Views into a decoded body; valid while the body's bytes are.
struct MessageView {
  std::uint64_t msg_id = 0;
  std::uint64_t seq = 0;
  std::string_view topic;
  std::span<const std::uint8_t> body;
};
struct ResultView {
  std::uint64_t msg_id = 0;
  std::uint64_t seq = 0;
  Status status = Status::done;
  bool truncated = false;
  std::int16_t exit_code = kNoExit;
  std::span<const std::uint8_t> body;
};

// `body` is a frame's body (after the 8-byte header). On error `out` is
// left unspecified.
BodyError decode_message(std::span<const std::uint8_t> body, MessageView& out) noexcept;
BodyError decode_result(std::span<const std::uint8_t> body, ResultView& out) noexcept;
BodyError decode_receipt(std::span<const std::uint8_t> body, std::uint64_t& seq) noexcept;

// Append one whole frame (header + body) to `out`. Each checks its fields
// with the decoder's rules and appends nothing on error.
BodyError encode_message(std::vector<std::uint8_t>& out, const MessageView& m);
BodyError encode_result(std::vector<std::uint8_t>& out, const ResultView& r);
void encode_receipt(std::vector<std::uint8_t>& out, std::uint64_t seq);

}  // namespace tunnel::control
