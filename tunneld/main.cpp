// tunneld: carries UDP between two TUN devices over one MPTCP connection.
// Flags are the primary configuration; see `tunneld --help` and README.md.
#include "admin.hpp"
#include "flags.hpp"
#include "options.hpp"

#include <tunnel/control_wire.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/log.hpp>
#include <tunnel/message_store.hpp>
#include <tunnel/wire.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <iterator>

namespace {
constexpr int kExitUsage = 2;
}  // namespace

using tunneld::add_common;
using tunneld::checked_id;
using tunneld::endpoint_flag;
using tunneld::path_flag;
using tunneld::finish_common;
using tunneld::parse_size;
using tunneld::Raw;

int main(int argc, char** argv) {
  // A peer that resets a connection must not kill the daemon: writes use
  // MSG_NOSIGNAL, and nothing else should raise SIGPIPE either.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "tunneld: carries UDP over a multipath TCP (MPTCP) tunnel between a CPE (client) with several\n"
      "WAN paths and an aggregation gateway (server). Packets enter and leave through a TUN device."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tunneld ") + TUNNELD_VERSION + " (protocol " +
                                         std::to_string(tunnel::wire::kVersion) + ", serves " +
                                         std::to_string(tunnel::wire::kMinVersion) + ".." +
                                         std::to_string(tunnel::wire::kVersion) + ")");

  tunneld::ServerOptions so;
  tunneld::ClientOptions co;
  Raw sraw, craw;
  std::vector<std::string> listen, server;
  std::vector<std::string> prefixes;
  unsigned connect_timeout_ms = 5000, reconnect_max_ms = 1000, path_retry_ms = 2000, handshake_ms = 5000;

  auto* srv = app.add_subcommand("server", "Run the gateway end: listen for CPEs");
  srv->add_option("--listen", listen,
                  "Address and port to listen on, ADDR:PORT or [ADDR6]:PORT; repeatable (e.g. one per family: "
                  "each address is then announced to CPEs, and a CPE path of either family joins)")
      ->required();
  srv->add_option("--id", so.id, "This gateway's id, told to CPEs in the handshake (default: the host name)");
  srv->add_flag("--allow-unbound-prefixes", so.allow_unbound_prefixes,
                "Let a CPE whose key-file line binds no prefixes (or that uses the any-id key) claim any "
                "prefix; by default such a CPE may claim none (logs a warning)");
  srv->add_option("--max-cpes", so.max_cpes, "Most CPE sessions at once; more are refused with 'gateway full'")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  srv->add_option("--max-pending", so.max_pending,
                  "Most connections in the handshake at once; at the cap the oldest is dropped (counted)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  srv->add_option("--max-pending-per-source", so.max_pending_per_source,
                  "Most of those from one IPv4 address or IPv6 /64; at the cap that source's oldest is dropped")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  std::string memory_limit;
  srv->add_option("--shape-downlink", so.shape_downlink,
                  "Interface toward the CPEs whose egress tunneld shapes (replacing its root qdisc), repeatable: "
                  "each CPE path at 98% of the downlink rate its CPE announces (--path NAME,down=RATE), realtime "
                  "first; other traffic unshaped");
  srv->add_option("--memory-limit", memory_limit,
                  "Bytes the sessions' buffers may hold in all; over it new sessions are refused ('gateway full') "
                  "and replay buffers shed, oldest frames first (drop_memory). 0: none. Default: half the RAM");
  srv->add_option("--handshake-timeout", handshake_ms, "Milliseconds a new connection has to complete the handshake")
      ->capture_default_str()
      ->check(CLI::Range(100u, 60000u));
  add_common(srv, so, sraw);

  auto* cli = app.add_subcommand("client", "Run the CPE end: connect to a gateway over every --path");
  cli->add_option("--server", server,
                  "Gateway address and port, ADDR:PORT or [ADDR6]:PORT; give it once per family when the gateway "
                  "has both (a path with only IPv6 then joins over IPv6)")
      ->required();
  cli->add_option("--id", co.id, "This CPE's id, sent in the handshake (default: the host name)");
  cli->add_option("--prefix", prefixes,
                  "Inner prefix this CPE serves, CIDR; repeatable, at least one. The gateway routes these "
                  "destinations to it and drops packets from it with other sources")
      ->required();
  cli->add_option("--group", co.groups,
                  "Control message group this CPE is in (`tunneld send --group NAME` on the gateway reaches it); "
                  "repeatable, at most 16, each 1-64 characters of [A-Za-z0-9._-]. Where the gateway's key file "
                  "lists this id's groups (groups=), any other is refused");
  std::vector<std::string> path_raw, backup_path_raw;
  cli->add_option("--path", path_raw,
                  "WAN interface to open a subflow on, IFNAME[,up=RATE][,down=RATE] (RATE as tc: 4mbit, 800kbit); "
                  "repeatable. It need not exist or have an address yet: it joins when it gets one (followed "
                  "through rtnetlink). With up=, tunneld shapes the interface's egress (replacing its root qdisc) "
                  "to 98% of RATE with realtime first, so realtime does not wait behind bulk in the line's buffer")
      ->required();
  cli->add_option("--backup-path", backup_path_raw,
                  "WAN interface used only when no --path works, same form as --path; repeatable");
  cli->add_option("--connect-timeout", connect_timeout_ms, "Milliseconds before a connect attempt is abandoned")
      ->capture_default_str()
      ->check(CLI::Range(100u, 120000u));
  cli->add_option("--reconnect-max", reconnect_max_ms, "Longest pause between reconnect attempts, in ms")
      ->capture_default_str()
      ->check(CLI::Range(100u, 600000u));
  cli->add_option("--path-retry", path_retry_ms,
                  "Milliseconds between attempts to rebuild a path's lost subflow (checked every --stats-interval); "
                  "also how long a path of the gateway's other address family may be up without a subflow "
                  "before the tunnel is re-dialled for it")
      ->capture_default_str()
      ->check(CLI::Range(200u, 600000u));
  add_common(cli, co, craw);

  std::string status_socket, status_tun;
  bool status_json = false;
  auto* st = app.add_subcommand("status", "Print a running tunneld's state, connection, subflows and counters");
  st->add_option("--socket", status_socket, "Status socket of the daemon");
  st->add_option("--tun", status_tun, "TUN name of the daemon (finds its default status socket)");
  st->add_flag("--json", status_json, "Print JSON instead of text");

  tunneld::SendArgs send_args;
  std::string send_tun, send_body, result_tun, result_socket, result_id;
  bool result_json = false;
  auto* snd = app.add_subcommand(
      "send", "Send a control message through a running tunneld and print each target's result, one line each: "
              "ID STATUS EXIT RESULT. Exit code 0 when every target answered done with exit code 0, 1 otherwise, "
              "2 for bad usage, 3 when the daemon cannot be reached");
  snd->add_option("--socket", send_args.socket, "Status socket of the daemon");
  snd->add_option("--tun", send_tun, "TUN name of the daemon (finds its default status socket)");
  // One value per flag: the positionals follow.
  snd->add_option("--to", send_args.to, "Gateway: a CPE id to send to; repeatable")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  snd->add_option("--group", send_args.groups, "Gateway: every CPE in this group; repeatable")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  snd->add_flag("--all", send_args.all, "Gateway: every CPE in its table, held sessions included");
  snd->add_option("--timeout", send_args.timeout_s, "Seconds to wait for the results; targets still open print "
                                                     "as pending")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  snd->add_flag("--no-wait", send_args.no_wait, "Print the message id and return once the message is accepted");
  snd->add_flag("--json", send_args.json, "Print a JSON array of {peer, msg_id, status, exit, result, truncated}");
  snd->add_option("TOPIC", send_args.topic, "1-64 characters of [A-Za-z0-9._-], not starting with '-'")->required();
  snd->add_option("BODY", send_body, "The message body (default: read from stdin), at most 64 KiB");

  auto* res = app.add_subcommand("result", "Print the results of an earlier `send` (kept at least 10 minutes)");
  res->add_option("--socket", result_socket, "Status socket of the daemon");
  res->add_option("--tun", result_tun, "TUN name of the daemon (finds its default status socket)");
  res->add_flag("--json", result_json, "Print JSON, as send --json");
  res->add_option("MSG_ID", result_id, "The message id send --no-wait printed")->required();

  try {
    app.parse(argc, argv);
    if (*srv) {
      for (const auto& l : listen) so.listen.push_back(endpoint_flag(l, "--listen"));
      so.handshake_timeout = std::chrono::milliseconds(handshake_ms);
      so.id = checked_id(so.id);
      if (!memory_limit.empty())
        so.memory_limit = parse_size(memory_limit, "--memory-limit", 0, std::size_t{1} << 50);
      finish_common(so, sraw);
    } else if (*cli) {
      for (const auto& v : server) co.servers.push_back(endpoint_flag(v, "--server"));
      if (co.servers.size() > 2 ||
          (co.servers.size() == 2 && co.servers[0].address().is_v4() == co.servers[1].address().is_v4()))
        throw CLI::ValidationError("--server", "give one address, or one IPv4 and one IPv6 address");
      co.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
      co.reconnect_max = std::chrono::milliseconds(reconnect_max_ms);
      co.path_retry = std::chrono::milliseconds(path_retry_ms);
      for (const auto& p : prefixes) {
        try {
          co.prefixes.push_back(tunnel::parse_prefix(p));
        } catch (const std::invalid_argument& e) {
          throw CLI::ValidationError("--prefix", e.what());
        }
      }
      for (const auto* raw : {&path_raw, &backup_path_raw})
        for (const auto& v : *raw) co.paths.push_back(path_flag(v, raw == &path_raw ? "--path" : "--backup-path"));
      co.id = checked_id(co.id);
      if (co.groups.size() > tunnel::hs::kMaxGroups) throw CLI::ValidationError("--group", "at most 16 groups");
      for (const auto& g : co.groups)
        if (!tunnel::hs::valid_group(g))
          throw CLI::ValidationError("--group", "'" + g + "': 1-64 characters of [A-Za-z0-9._-], not starting with '-'");
      finish_common(co, craw);
    } else if (*snd) {
      if (send_args.socket.empty()) {
        if (send_tun.empty()) throw CLI::ValidationError("send", "give --socket PATH or --tun NAME");
        send_args.socket = tunneld::default_status_socket(send_tun);
      }
      if (!tunnel::control::valid_topic(send_args.topic))
        throw CLI::ValidationError("TOPIC", "1-64 characters of [A-Za-z0-9._-], not starting with '-'");
      for (const auto& g : send_args.groups)
        if (!tunnel::hs::valid_group(g)) throw CLI::ValidationError("--group", "'" + g + "' is not a group name");
      for (const auto& id : send_args.to)
        if (id.empty() || id.size() > 64 || std::any_of(id.begin(), id.end(), [](char c) { return c <= 0x20 || c >= 0x7f; }))
          throw CLI::ValidationError("--to", "'" + id + "' is not an id (1..64 printable ASCII characters)");
      if (snd->count("BODY")) {
        send_args.body.assign(send_body.begin(), send_body.end());
      } else {
        send_args.body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      }
      if (send_args.body.size() > tunnel::control::kMaxControlBody)
        throw CLI::ValidationError("BODY", "at most 65536 bytes");
    } else if (*res) {
      if (result_socket.empty()) {
        if (result_tun.empty()) throw CLI::ValidationError("result", "give --socket PATH or --tun NAME");
        result_socket = tunneld::default_status_socket(result_tun);
      }
      if (!tunnel::control::parse_msg_id(result_id))
        throw CLI::ValidationError("MSG_ID", "1-16 hex digits, not 0");
    } else if (*st && status_socket.empty()) {
      if (status_tun.empty()) throw CLI::ValidationError("status", "give --socket PATH or --tun NAME");
      status_socket = tunneld::default_status_socket(status_tun);
    }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line that names the problem, and where the flags are described: a
    // page of help after it would bury the error in a service's log.
    std::string cmd = "tunneld";
    if (*srv) cmd += " server";
    if (*cli) cmd += " client";
    if (*st) cmd += " status";
    if (*snd) cmd += " send";
    if (*res) cmd += " result";
    std::cerr << "tunneld: " << e.what() << " (see '" << cmd << " --help')\n";
    return kExitUsage;
  }

  if (*st) return tunneld::run_status(status_socket, status_json);
  if (*snd) return tunneld::run_send(send_args);
  if (*res) return tunneld::run_result(result_socket, result_json, result_id);

  const std::string& level = *srv ? so.log_level : co.log_level;
  if (!tunnel::init_logging(level)) {
    std::cerr << "tunneld: unknown --log-level " << level << "\n";
    return kExitUsage;
  }
  const int rc = *srv ? tunneld::run_server(so) : tunneld::run_client(co);
  tunnel::shutdown_logging();
  return rc;
}
