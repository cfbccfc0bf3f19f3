// Wiring: options to the library's roles (tunnel::Gateway, tunnel::Client),
// keys, signals, the status socket, and the exit codes.
#include "options.hpp"
#include "report.hpp"
#include "status.hpp"

#include <tunnel/client.hpp>
#include <tunnel/gateway.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <iostream>
#include <optional>

namespace tunneld {
namespace asio = boost::asio;

namespace {

constexpr int kExitFailure = 1;

int fail_startup(const std::string& what) {
  spdlog::error("{}", what);
  std::cerr << "tunneld: " << what << "\n";
  return kExitFailure;
}

tunnel::NodeConfig node_config(const CommonOptions& o, const char* role) {
  tunnel::NodeConfig n;
  n.role = role;
  n.tun = tunnel::TunConfig{o.tun, o.mtu, o.tun_addresses, o.tun_offload};
  n.port.mtu = o.mtu;
  n.port.allow_non_udp = o.allow_non_udp;
  n.port.vnet_hdr = o.tun_offload;
  auto& c = n.link;
  c.mtu = o.mtu;
  c.send_queue_bytes = o.send_queue_bytes;
  c.buffer_bytes = o.buffer_bytes;
  c.buffer_age = o.buffer_age;
  c.heartbeat = o.heartbeat;
  c.dead_interval = o.dead_interval;
  c.hold = o.session_hold;
  c.batch_bytes = o.batch_bytes;
  c.compress = o.header_compression;
  n.tuning = {true, o.notsent_lowat, o.congestion, o.socket_rcvbuf};
  n.stats_interval = o.stats_interval;
  return n;
}

// Runs a started role until a signal stops it. `render` answers the status socket.
int run_node(asio::io_context& io, tunnel::Node& node, const CommonOptions& o, StatusServer::Render render) {
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::optional<StatusServer> status;
  try {
    node.start();
    status.emplace(io, o.status_socket, std::move(render));
  } catch (const std::exception& e) {
    node.stop();
    return fail_startup(e.what());
  }
  spdlog::info("status socket {}", o.status_socket);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    status.reset();
    node.stop();
  });
  io.run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int run_server(const ServerOptions& o) {
  if (auto missing = tunnel::check_kernel_support(); !missing.empty()) return fail_startup(missing);
  tunnel::GatewayConfig gc;
  gc.node = node_config(o, "server");
  gc.node.tuning.nodelay = true;
  gc.listen = o.listen;
  gc.id = o.id;
  gc.max_cpes = o.max_cpes;
  gc.max_pending = o.max_pending;
  gc.handshake_timeout = o.handshake_timeout;
  try {
    if (!o.insecure_no_auth) gc.keys = tunnel::hs::load_key_table(o.psk_file);
  } catch (const std::exception& e) {
    return fail_startup(e.what());
  }
  if (gc.keys)
    spdlog::info("CPE keys loaded: {} by id{}", gc.keys->by_id.size(), gc.keys->any ? ", plus one for any id" : "");
  else
    spdlog::warn("authentication is DISABLED (--insecure-no-auth): any CPE may connect");
  asio::io_context io;
  tunnel::Gateway g(io, std::move(gc));
  return run_node(io, g, o, [&g, &o](bool json) {
    const auto r = Report::of(g, o.tun);
    return json ? r.json() : r.text();
  });
}

int run_client(const ClientOptions& o) {
  if (auto missing = tunnel::check_kernel_support(); !missing.empty()) return fail_startup(missing);
  tunnel::ClientConfig cc;
  cc.node = node_config(o, "client");
  cc.servers = o.servers;
  cc.id = o.id;
  cc.prefixes = o.prefixes;
  for (const auto& p : o.paths) cc.paths.push_back({p, 0});
  for (const auto& p : o.backup_paths) cc.paths.push_back({p, tunnel::uapi::kPmAddrFlagBackup});
  cc.connect_timeout = o.connect_timeout;
  cc.reconnect_max = o.reconnect_max;
  cc.path_retry = o.path_retry;
  try {
    if (!o.insecure_no_auth) cc.key = tunnel::hs::load_key_file(o.psk_file);
  } catch (const std::exception& e) {
    return fail_startup(e.what());
  }
  if (o.insecure_no_auth) spdlog::warn("authentication is DISABLED (--insecure-no-auth)");
  std::string prefixes;
  for (const auto& p : o.prefixes) prefixes += (prefixes.empty() ? "" : " ") + p.to_string();
  spdlog::info("CPE id '{}', prefixes {}", o.id, prefixes);
  asio::io_context io;
  tunnel::Client c(io, std::move(cc));
  return run_node(io, c, o, [&c, &o](bool json) {
    auto r = Report::of(c, o.tun, o.id, o.prefixes);
    if (const auto* p = c.paths()) r.paths = PathReport::of(*p);
    return json ? r.json() : r.text();
  });
}

}  // namespace tunneld
