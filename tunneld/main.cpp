// tunneld: carries UDP between two TUN devices over one MPTCP connection.
// Flags are the primary configuration; see `tunneld --help` and README.md.
#include "admin.hpp"
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

// Flag values that need converting after parsing, per role.
struct Raw {
  std::vector<std::string> tun_addrs;
  std::string send_queue, lowat, buffer_bytes, batch_bytes, rcvbuf;
  unsigned stats_ms = 5000, heartbeat_ms = 1000, dead_ms = 3000, buffer_age_ms = 5000, hold_ms = 30000;
  unsigned handler_timeout_s = 30;
  std::vector<std::string> class_rules;
};

void add_common(CLI::App* app, tunneld::CommonOptions& o, Raw& raw) {
  auto& tun_addrs = raw.tun_addrs;
  auto& send_queue = raw.send_queue;
  auto& lowat = raw.lowat;
  auto& stats_ms = raw.stats_ms;
  app->add_option("--tun", o.tun, "TUN device to create or attach to (e.g. ha0)")->required();
  app->add_option("--tun-address", tun_addrs, "Address to put on the TUN device, CIDR; repeatable");
  app->add_option("--mtu", o.mtu, "TUN MTU; datagrams up to this size travel whole")
      ->capture_default_str()
      ->check(CLI::Range(576u, 65535u));
  app->add_option("--status-socket", o.status_socket,
                  "Unix socket for `tunneld status` (default /run/tunneld/TUN.sock)");
  app->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app->add_flag("--allow-non-udp", o.allow_non_udp,
                "Carry every IP packet, not only UDP (default: count and drop the rest)");
  app->add_option("--tun-offload", o.tun_offload,
                  "Write same-flow datagrams to the TUN as one UDP GSO packet (IFF_VNET_HDR); the kernel "
                  "splits it back into the same datagrams")
      ->capture_default_str();
  app->add_option("--send-queue", send_queue,
                  "Unsent bytes allowed per session while connected; beyond it new packets are dropped and "
                  "counted (kept instead when the socket took nothing, or the peer acknowledged nothing, "
                  "for 500 ms: a stall, not overload). What a stall kept, or a resume replays, does not count "
                  "against it until sent")
      ->default_str("262144");
  app->add_option("--notsent-lowat", lowat, "TCP_NOTSENT_LOWAT of the MPTCP socket in bytes (0: kernel default)")
      ->default_str("131072");
  app->add_option("--socket-rcvbuf", raw.rcvbuf,
                  "SO_RCVBUF of the MPTCP connection and its subflows in bytes, fixed; the kernel doubles it "
                  "(0: kernel autotuning)")
      ->default_str("4194304");
  app->add_option("--batch-bytes", raw.batch_bytes,
                  "Largest DATA frame that packets may share (one header for all; 0: one packet a frame). "
                  "Packets share a frame only when they wait together: read from the TUN in one batch, or "
                  "queued behind a busy socket; none is held back to fill a frame")
      ->default_str("8192");
  app->add_flag("!--no-header-compression", o.header_compression,
                "Send every packet whole; by default a UDP datagram whose IP and UDP headers repeat an earlier "
                "packet of its frame sends only its IPv4 ID and UDP checksum (7 bytes, IPv6: 5, for 28 or 48)");
  app->add_option("--congestion", o.congestion,
                  "TCP congestion control for the tunnel's connection and subflows, e.g. bbr or cubic "
                  "(default: the system's, net.ipv4.tcp_congestion_control)");
  app->add_option("--stats-interval", stats_ms, "Milliseconds between subflow/fallback checks")
      ->capture_default_str()
      ->check(CLI::Range(100u, 3600000u));
  auto* psk = app->add_option("--psk-file", o.psk_file,
                              "Pre-shared key file (mode 600). CPE: one line, the key (64 hex digits or >= 16 "
                              "characters). Gateway: lines 'ID KEY', and/or one line 'KEY' for any id");
  auto* insecure = app->add_flag("--insecure-no-auth", o.insecure_no_auth,
                                 "Run without --psk-file: no authentication at all (testing only; logs a warning)");
  psk->excludes(insecure);
  app->add_flag("--integrity-only", o.integrity_only,
                "Authenticate frames after the handshake without encrypting them (either end may ask; "
                "the payload then crosses the WAN in clear)");
  auto* req = app->add_flag("--require-protection", o.require_protection,
                            "Refuse connections whose frames are not protected (a protocol 3 peer; default off "
                            "so that version 3 peers are served during an upgrade, docs/security.md)");
  req->excludes(insecure);
  app->add_option("--heartbeat", raw.heartbeat_ms, "Milliseconds between heartbeats sent to the peer")
      ->capture_default_str()
      ->check(CLI::Range(50u, 60000u));
  app->add_option("--dead-interval", raw.dead_ms,
                  "Milliseconds of silence (or of unacknowledged data) after which the peer counts as gone and "
                  "the connection is dropped")
      ->capture_default_str()
      ->check(CLI::Range(200u, 600000u));
  app->add_option("--buffer-bytes", raw.buffer_bytes,
                  "Replay buffer per session: sent but unacknowledged frames, and packets queued while "
                  "disconnected; the oldest are dropped (counted) beyond it")
      ->default_str("8388608");
  app->add_option("--buffer-age", raw.buffer_age_ms,
                  "Milliseconds a packet may wait in the replay buffer before it is dropped (counted)")
      ->capture_default_str()
      ->check(CLI::Range(100u, 600000u));
  app->add_option("--session-hold", raw.hold_ms,
                  "Milliseconds a session without a connection is kept for resume before it and its buffer "
                  "are dropped (counted)")
      ->capture_default_str()
      ->check(CLI::Range(100u, 86400000u));
  app->add_option("--realtime-mode", o.realtime_mode,
                  "redundant: a realtime packet (see --class) goes on every path's realtime link at once and the "
                  "receiver keeps the first copy; off: every packet rides the bulk connection")
      ->capture_default_str()
      ->check(CLI::IsMember({"redundant", "off"}));
  app->add_option("--class", raw.class_rules,
                  "Traffic class rule, CLASS:KEY=VALUE[,KEY=VALUE...], tried in order before the defaults "
                  "(DSCP EF, AF4x, CS4, CS5, and small low-rate flows are realtime). CLASS is realtime or bulk; "
                  "keys: proto (udp, tcp or a number), sport, dport (N or N-M), src, dst (CIDR), dscp "
                  "(a number or a name such as ef, af41, cs5). Repeatable, e.g. "
                  "--class realtime:proto=udp,dport=3478-3481 --class bulk:dst=198.51.100.0/24");
  app->add_option("--on-message", o.on_message,
                  "Control message handler: run as PROGRAM TOPIC for each message from the peer, the body on "
                  "stdin, TUNNELD_MSG_ID and TUNNELD_PEER_ID in its environment; its stdout (up to 64 KiB) and "
                  "exit code are the result. One at a time per session, in arrival order. Without it every "
                  "topic but tunneld.ping and tunneld.status is answered no-handler");
  app->add_option("--max-handlers", o.max_handlers, "Most handlers running at once across the daemon")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app->add_option("--message-queue", o.message_queue,
                  "Messages waiting for the handler per session; beyond it a message is answered busy at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65536u));
  app->add_option("--handler-timeout", raw.handler_timeout_s,
                  "Seconds a handler may run; then its process group is killed and the message answered timeout")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
}

std::size_t parse_size(const std::string& s, const char* flag, std::size_t min, std::size_t max) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    pos = std::string::npos;
  }
  if (pos != s.size() || v < min || v > max) {
    throw CLI::ValidationError(std::string(flag), "'" + s + "' is not a byte count in [" + std::to_string(min) +
                                                      ", " + std::to_string(max) + "]");
  }
  return static_cast<std::size_t>(v);
}

void finish_common(tunneld::CommonOptions& o, const Raw& raw) {
  if (o.psk_file.empty() && !o.insecure_no_auth)
    throw CLI::ValidationError("--psk-file", "required (or --insecure-no-auth to run without authentication)");
  for (const auto& a : raw.tun_addrs) {
    try {
      o.tun_addresses.push_back(tunnel::parse_prefix(a));
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--tun-address", e.what());
    }
  }
  if (!raw.send_queue.empty())
    o.send_queue_bytes = parse_size(raw.send_queue, "--send-queue", 16 * 1024, 64u << 20);
  if (!raw.lowat.empty())
    o.notsent_lowat = static_cast<unsigned>(parse_size(raw.lowat, "--notsent-lowat", 0, 64u << 20));
  if (!raw.rcvbuf.empty()) o.socket_rcvbuf = parse_size(raw.rcvbuf, "--socket-rcvbuf", 0, 512u << 20);
  if (o.socket_rcvbuf && o.socket_rcvbuf < 64 * 1024)
    throw CLI::ValidationError("--socket-rcvbuf", "must be 0 (autotuning) or at least 65536");
  if (!raw.batch_bytes.empty()) o.batch_bytes = parse_size(raw.batch_bytes, "--batch-bytes", 0, 65535);
  if (!raw.buffer_bytes.empty())
    o.buffer_bytes = parse_size(raw.buffer_bytes, "--buffer-bytes", 64 * 1024, std::size_t{1} << 30);
  o.stats_interval = std::chrono::milliseconds(raw.stats_ms);
  o.heartbeat = std::chrono::milliseconds(raw.heartbeat_ms);
  o.dead_interval = std::chrono::milliseconds(raw.dead_ms);
  o.buffer_age = std::chrono::milliseconds(raw.buffer_age_ms);
  o.session_hold = std::chrono::milliseconds(raw.hold_ms);
  o.handler_timeout = std::chrono::seconds(raw.handler_timeout_s);
  for (const auto& r : raw.class_rules) {
    const auto p = tunnel::classify::parse_rule(r);
    if (p.error != tunnel::classify::RuleError::ok)
      throw CLI::ValidationError("--class", "'" + r + "': " + std::string(tunnel::classify::to_string(p.error)) +
                                                " at offset " + std::to_string(p.at));
    o.class_rules.push_back(p.rule);
  }
  if (o.dead_interval <= o.heartbeat)
    throw CLI::ValidationError("--dead-interval", "must be longer than --heartbeat (three times is usual)");
  if (o.status_socket.empty()) o.status_socket = tunneld::default_status_socket(o.tun);
}

boost::asio::ip::tcp::endpoint endpoint_flag(const std::string& v, const char* flag) {
  try {
    return tunnel::parse_host_port(v);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(flag, e.what());
  }
}

// --id, or the host name when empty; 1..64 printable ASCII characters.
std::string checked_id(std::string id) {
  if (id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    id = host;
  }
  if (id.empty() || id.size() > 64 || std::any_of(id.begin(), id.end(), [](char c) { return c <= 0x20 || c >= 0x7f; }))
    throw CLI::ValidationError("--id", "must be 1..64 printable ASCII characters without spaces");
  return id;
}

}  // namespace

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
                  "repeatable, at most 16, each 1-64 characters of [A-Za-z0-9._-]");
  cli->add_option("--path", co.paths,
                  "WAN interface to open a subflow on; repeatable. It need not exist or have an address yet: "
                  "it joins when it gets one (followed through rtnetlink)")
      ->required();
  cli->add_option("--backup-path", co.backup_paths, "WAN interface used only when no --path works; repeatable");
  cli->add_option("--connect-timeout", connect_timeout_ms, "Milliseconds before a connect attempt is abandoned")
      ->capture_default_str()
      ->check(CLI::Range(100u, 120000u));
  cli->add_option("--reconnect-max", reconnect_max_ms, "Longest pause between reconnect attempts, in ms")
      ->capture_default_str()
      ->check(CLI::Range(100u, 600000u));
  cli->add_option("--path-retry", path_retry_ms,
                  "Milliseconds between attempts to rebuild a path's lost subflow (checked every --stats-interval)")
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
  return *srv ? tunneld::run_server(so) : tunneld::run_client(co);
}
