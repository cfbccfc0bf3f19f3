// tunneld: carries UDP between two TUN devices over one MPTCP connection.
// Flags are the primary configuration; see `tunneld --help` and README.md.
#include "options.hpp"

#include <tunnel/log.hpp>
#include <tunnel/wire.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <iostream>

namespace {

constexpr int kExitUsage = 2;

// Flag values that need converting after parsing, per role.
struct Raw {
  std::vector<std::string> tun_addrs;
  std::string send_queue, lowat, buffer_bytes, batch_bytes, rcvbuf;
  unsigned stats_ms = 5000, heartbeat_ms = 1000, dead_ms = 3000, buffer_age_ms = 5000, hold_ms = 30000;
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
  std::string listen, server;
  std::vector<std::string> prefixes;
  unsigned connect_timeout_ms = 5000, reconnect_max_ms = 1000, path_retry_ms = 2000, handshake_ms = 5000;

  auto* srv = app.add_subcommand("server", "Run the gateway end: listen for CPEs");
  srv->add_option("--listen", listen, "Address and port to listen on, ADDR:PORT or [ADDR6]:PORT")->required();
  srv->add_option("--id", so.id, "This gateway's id, told to CPEs in the handshake (default: the host name)");
  srv->add_option("--max-cpes", so.max_cpes, "Most CPE sessions at once; more are refused with 'gateway full'")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  srv->add_option("--max-pending", so.max_pending,
                  "Most connections in the handshake at once; more are closed at once (counted)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  srv->add_option("--handshake-timeout", handshake_ms, "Milliseconds a new connection has to complete the handshake")
      ->capture_default_str()
      ->check(CLI::Range(100u, 60000u));
  add_common(srv, so, sraw);

  auto* cli = app.add_subcommand("client", "Run the CPE end: connect to a gateway over every --path");
  cli->add_option("--server", server, "Gateway address and port, ADDR:PORT or [ADDR6]:PORT")->required();
  cli->add_option("--id", co.id, "This CPE's id, sent in the handshake (default: the host name)");
  cli->add_option("--prefix", prefixes,
                  "Inner prefix this CPE serves, CIDR; repeatable, at least one. The gateway routes these "
                  "destinations to it and drops packets from it with other sources")
      ->required();
  cli->add_option("--path", co.paths, "WAN interface to open a subflow on; repeatable")->required();
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

  try {
    app.parse(argc, argv);
    if (*srv) {
      so.listen = endpoint_flag(listen, "--listen");
      so.handshake_timeout = std::chrono::milliseconds(handshake_ms);
      so.id = checked_id(so.id);
      finish_common(so, sraw);
    } else if (*cli) {
      co.server = endpoint_flag(server, "--server");
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
      finish_common(co, craw);
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
    std::cerr << "tunneld: " << e.what() << " (see '" << cmd << " --help')\n";
    return kExitUsage;
  }

  if (*st) return tunneld::run_status(status_socket, status_json);

  const std::string& level = *srv ? so.log_level : co.log_level;
  if (!tunnel::init_logging(level)) {
    std::cerr << "tunneld: unknown --log-level " << level << "\n";
    return kExitUsage;
  }
  return *srv ? tunneld::run_server(so) : tunneld::run_client(co);
}
