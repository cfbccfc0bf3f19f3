// `tunneld send` and `tunneld result`: control messages through the status
// socket (status.hpp), both the command's side and the daemon's.
//
// Request (one line, tokens separated by one space, then the body):
//   send (wait=MS|nowait) json=0|1 [to=ID]... [group=NAME]... [all] topic=TOPIC body=N\n  + N body bytes
//   result json=0|1 id=MSG_ID\n
// Ids, groups and topics never hold spaces (the daemon and the command check
// them). Reply: a header line `EXIT` or `EXIT MESSAGE` (MESSAGE for stderr),
// then what the command prints on stdout; the daemon closes after it.
// EXIT is the command's exit code: 0 every target `done` with exit code 0
// (`nowait`: accepted), 1 otherwise, 2 bad usage. A command that cannot reach
// the daemon exits 3.
#pragma once

#include <tunnel/node.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tunneld {

inline constexpr int kExitUnreachable = 3;

// The daemon's side: answers one admin request through `reply` (called once,
// possibly later: a `send` that waits replies when every target answered or
// its wait ends).
using AdminReply = std::function<void(std::string)>;
void admin_request(tunnel::Node& node, std::string_view line, std::vector<std::uint8_t> body, AdminReply reply);
// True when `line` is an admin request; `body_bytes` is how many body bytes
// follow it (0 for result), or SIZE_MAX when the line is malformed.
bool is_admin_request(std::string_view line, std::size_t& body_bytes);

struct SendArgs {
  std::string socket;
  std::vector<std::string> to, groups;
  bool all = false;
  unsigned timeout_s = 60;
  bool no_wait = false;
  bool json = false;
  std::string topic;
  std::vector<std::uint8_t> body;
};
int run_send(const SendArgs& a);
int run_result(const std::string& socket, bool json, const std::string& msg_id);

}  // namespace tunneld
