// What `tunneld send` and `tunneld result` print, as pure functions.
//
// Text: one line per target, `ID STATUS EXIT RESULT\n`, where EXIT is the
// exit code or `-` when there is none, and RESULT is the body with `\`,
// newline, carriage return and tab written as `\\`, `\n`, `\r`, `\t` and any
// other byte below 0x20 or 0x7f as `\xHH`, so that each target is one line.
// An empty RESULT leaves out the space before it too (`cpe9 unknown -`).
//
// JSON: an array of objects, one per target, in the record's target order:
//   {"peer":"cpe-1","msg_id":"00000001000000a3","status":"done","exit":0,
//    "result":"...","truncated":false}
// `exit` is null when there is none; `result` is the body as a JSON string
// (bytes that are not valid UTF-8 become U+FFFD).
//
// Exit code of the command: 0 when there is at least one target and every
// target is `done` with exit code 0, else 1.
#pragma once

#include <tunnel/message_store.hpp>

#include <span>
#include <string>

namespace tunnel::control {

std::string escape_line(std::span<const std::uint8_t> body);
std::string json_string(std::span<const std::uint8_t> body);  // with the quotes

std::string format_lines(const SentMessage& m);
std::string format_json(const SentMessage& m);
int exit_code_for(std::span<const TargetResult> targets) noexcept;

}  // namespace tunnel::control
