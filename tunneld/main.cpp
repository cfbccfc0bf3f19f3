// tunneld: carries UDP between two TUN devices over one MPTCP connection.
// Flags are the primary configuration; see `tunneld --help` and README.md.
#include "options.hpp"

#include <tunnel/log.hpp>

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

constexpr int kExitUsage = 2;

void add_common(CLI::App* app, tunneld::CommonOptions& o, std::vector<std::string>& tun_addrs,
                std::string& send_queue, std::string& lowat, unsigned& stats_ms) {
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
                  "Userspace send queue in bytes; packets beyond it are dropped and counted")
      ->default_str("262144");
  app->add_option("--notsent-lowat", lowat, "TCP_NOTSENT_LOWAT of the MPTCP socket in bytes (0: kernel default)")
      ->default_str("131072");
  app->add_option("--stats-interval", stats_ms, "Milliseconds between heartbeats and subflow/fallback checks")
      ->capture_default_str()
      ->check(CLI::Range(100u, 3600000u));
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

void finish_common(tunneld::CommonOptions& o, const std::vector<std::string>& tun_addrs,
                   const std::string& send_queue, const std::string& lowat, unsigned stats_ms) {
  for (const auto& a : tun_addrs) {
    try {
      o.tun_addresses.push_back(tunnel::parse_prefix(a));
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--tun-address", e.what());
    }
  }
  if (!send_queue.empty()) o.send_queue_bytes = parse_size(send_queue, "--send-queue", 16 * 1024, 64u << 20);
  if (!lowat.empty()) o.notsent_lowat = static_cast<unsigned>(parse_size(lowat, "--notsent-lowat", 0, 64u << 20));
  o.stats_interval = std::chrono::milliseconds(stats_ms);
  if (o.status_socket.empty()) o.status_socket = tunneld::default_status_socket(o.tun);
}

boost::asio::ip::tcp::endpoint endpoint_flag(const std::string& v, const char* flag) {
  try {
    return tunnel::parse_host_port(v);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(flag, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tunneld: carries UDP over a multipath TCP (MPTCP) tunnel between a CPE (client) with several\n"
      "WAN paths and an aggregation gateway (server). Packets enter and leave through a TUN device."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tunneld 0.1.0 (protocol 1)");

  tunneld::ServerOptions so;
  tunneld::ClientOptions co;
  std::vector<std::string> s_addrs, c_addrs;
  std::string s_sq, s_lw, c_sq, c_lw, listen, server;
  unsigned s_stats = 5000, c_stats = 5000, connect_timeout_ms = 5000, reconnect_max_ms = 2000, path_retry_ms = 2000;

  auto* srv = app.add_subcommand("server", "Run the gateway end: listen for CPEs");
  srv->add_option("--listen", listen, "Address and port to listen on, ADDR:PORT or [ADDR6]:PORT")->required();
  add_common(srv, so, s_addrs, s_sq, s_lw, s_stats);

  auto* cli = app.add_subcommand("client", "Run the CPE end: connect to a gateway over every --path");
  cli->add_option("--server", server, "Gateway address and port, ADDR:PORT or [ADDR6]:PORT")->required();
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
  add_common(cli, co, c_addrs, c_sq, c_lw, c_stats);

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
      finish_common(so, s_addrs, s_sq, s_lw, s_stats);
    } else if (*cli) {
      co.server = endpoint_flag(server, "--server");
      co.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
      co.reconnect_max = std::chrono::milliseconds(reconnect_max_ms);
      co.path_retry = std::chrono::milliseconds(path_retry_ms);
      finish_common(co, c_addrs, c_sq, c_lw, c_stats);
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
    std::cerr << "tunneld: " << e.what() << "\n\n";
    CLI::App* shown = &app;
    if (*srv) shown = srv;
    if (*cli) shown = cli;
    if (*st) shown = st;
    std::cerr << shown->help();
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
