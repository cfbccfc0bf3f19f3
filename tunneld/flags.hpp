// The flags both roles share (tunneld server / client), and their
// conversion after CLI11 has parsed them. Parsing errors are thrown as
// CLI::ValidationError naming the flag; main() prints them in one line.
#pragma once

#include "options.hpp"

#include <CLI/CLI.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace tunneld {

// Flag values that need converting after parsing, per role.
struct Raw {
  std::vector<std::string> tun_addrs;
  std::string send_queue, lowat, buffer_bytes, batch_bytes, rcvbuf;
  unsigned stats_ms = 5000, heartbeat_ms = 1000, dead_ms = 3000, buffer_age_ms = 5000, hold_ms = 30000;
  unsigned handler_timeout_s = 30;
  std::vector<std::string> class_rules;
};

// Adds the common flags to a role's subcommand; values land in `o` or `raw`.
void add_common(CLI::App* app, CommonOptions& o, Raw& raw);
// Converts and checks what add_common() collected. Throws CLI::ValidationError.
void finish_common(CommonOptions& o, const Raw& raw);
// ADDR:PORT or [ADDR6]:PORT. Throws CLI::ValidationError naming `flag`.
boost::asio::ip::tcp::endpoint endpoint_flag(const std::string& v, const char* flag);
// --path / --backup-path: IFNAME[,up=RATE][,down=RATE]. A backup path gets
// the MPTCP backup flag. Throws CLI::ValidationError naming `flag`.
tunnel::PathSpec path_flag(const std::string& v, const char* flag);
// --id, or the host name when empty; 1..64 printable ASCII characters. Throws CLI::ValidationError.
std::string checked_id(std::string id);
// A byte count in [min, max]. Throws CLI::ValidationError naming `flag`.
std::size_t parse_size(const std::string& s, const char* flag, std::size_t min, std::size_t max);

}  // namespace tunneld
