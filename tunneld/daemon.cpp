// Wiring: options to the library's roles (tunnel::Gateway, tunnel::Client),
// keys, signals, the status socket, and the exit codes.
#include "admin.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "report.hpp"
#include "status.hpp"

#include <tunnel/client.hpp>
#include <tunnel/gateway.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
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
  n.realtime = o.realtime_mode != "off";
  n.class_rules = o.class_rules;
  n.control.runner.program = o.on_message;
  n.control.runner.max_handlers = o.max_handlers;
  n.control.runner.timeout = o.handler_timeout;
  n.control.message_queue = o.message_queue;
  return n;
}

// Runs a started role until SIGINT or SIGTERM stops it; SIGHUP calls
// `reload`. `render` answers the status socket.
int run_node(asio::io_context& io, tunnel::Node& node, const CommonOptions& o, const std::function<void()>& reload,
             StatusServer::Render render) {
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload();
      wait_hup();
    });
  };
  std::optional<StatusServer> status;
  try {
    node.start();
    node.control()->set_status([render] { return render(true); });
    status.emplace(io, o.status_socket, std::move(render),
                   [&node](std::string line, std::vector<std::uint8_t> body, std::function<void(std::string)> reply) {
                     admin_request(node, line, std::move(body), std::move(reply));
                   });
  } catch (const std::exception& e) {
    node.stop();
    return fail_startup(e.what());
  }
  spdlog::info("status socket {}", o.status_socket);
  wait_hup();
  if (o.on_message.empty())
    spdlog::info("control messages: no --on-message handler, only the built-in topics are answered");
  else
    spdlog::info("control messages: handler {} (at most {} at once, {} s each, {} waiting per session)", o.on_message,
                 o.max_handlers, o.handler_timeout.count(), o.message_queue);
  int exit_code = 0;
  asio::steady_timer watchdog(io), status_text(io);
  auto shutdown = [&] {
    notify::stopping();
    status.reset();
    boost::system::error_code ignored;
    hup.cancel(ignored);
    signals.cancel(ignored);
    watchdog.cancel();
    status_text.cancel();
    node.stop();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    shutdown();
  });
  node.on_fatal = [&](const std::string& why) {
    std::cerr << "tunneld: the TUN device is gone (" << why << "): exiting\n";
    exit_code = kExitFailure;
    shutdown();
  };
  // systemd: READY once started, WATCHDOG at half WatchdogSec= from the loop
  // itself (a loop that stops turning gets the service restarted), STATUS
  // every 10 s. No-ops outside systemd.
  std::function<void()> ping = [&] {
    notify::watchdog();
    watchdog.expires_after(*notify::watchdog_interval());
    watchdog.async_wait([&](const boost::system::error_code& ec) { if (!ec) ping(); });
  };
  if (notify::watchdog_interval()) ping();
  std::function<void()> tell = [&] {
    std::size_t n = 0;
    node.for_each_session([&n](const tunnel::Session&) { ++n; });
    notify::status(fmt::format("{}: {} sessions", node.state(), n));
    status_text.expires_after(std::chrono::seconds(10));
    status_text.async_wait([&](const boost::system::error_code& ec) { if (!ec) tell(); });
  };
  notify::ready(fmt::format("{} started", o.status_socket));
  tell();
  // A handler that throws (an allocation or OpenSSL failure) is logged and
  // the loop goes on; the daemon does not die of one connection's trouble.
  for (unsigned failures = 0;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("event loop: a handler failed: {} ({} so far); continuing", e.what(), ++failures);
    }
  }
  spdlog::info("stopped");
  return exit_code;
}

// Makes sure `need` descriptors can be open: raises the soft RLIMIT_NOFILE
// up to the hard limit; an error message when even that is too low.
std::string ensure_nofile(rlim_t need) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
  if (rl.rlim_cur >= need) return {};
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
    return fmt::format("--max-cpes and --max-pending need {} file descriptors but the hard limit (ulimit -Hn) is {}: "
                       "raise it (LimitNOFILE= in the unit) or lower --max-cpes",
                       need, rl.rlim_max);
  const rlim_t old = rl.rlim_cur;
  rl.rlim_cur = need;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
  spdlog::info("open file limit raised from {} to {}", old, need);
  return {};
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
  gc.max_pending_per_source = o.max_pending_per_source;
  gc.handshake_timeout = o.handshake_timeout;
  gc.allow_unbound_prefixes = o.allow_unbound_prefixes;
  gc.memory_limit = o.memory_limit ? *o.memory_limit
                                   : static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) *
                                         static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 2;
  if (gc.memory_limit) spdlog::info("memory limit {} bytes of session buffers", gc.memory_limit);
  gc.shape_downlink = o.shape_downlink;
  gc.protection = {o.integrity_only, o.require_protection};
  // A session's links (the bulk link and a realtime link per path: three
  // for the usual two-path CPE), each pending handshake, the TUN,
  // listeners, netlink and status sockets, handler pipes.
  if (auto e = ensure_nofile(rlim_t{o.max_cpes} * 3 + o.max_pending + 128); !e.empty()) return fail_startup(e);
  try {
    if (!o.insecure_no_auth) gc.keys = std::make_shared<const tunnel::hs::KeyTable>(tunnel::hs::load_key_table(o.psk_file));
  } catch (const std::exception& e) {
    return fail_startup(e.what());
  }
  if (gc.keys) {
    spdlog::info("CPE keys loaded: {} by id{}", gc.keys->by_id.size(), gc.keys->any ? ", plus one for any id" : "");
    if (gc.allow_unbound_prefixes)
      spdlog::warn("--allow-unbound-prefixes: a CPE without prefixes bound in the key file may claim any prefix");
  } else
    spdlog::warn("authentication is DISABLED (--insecure-no-auth): any CPE may connect");
  asio::io_context io;
  tunnel::Gateway g(io, std::move(gc));
  auto reload = [&g, &o] {
    if (o.insecure_no_auth) return;
    auto r = tunnel::keys::reload_key_table(o.psk_file);
    if (!r.table) {
      spdlog::error("SIGHUP: key file not reloaded, keeping the current keys: {}", r.error);
      return;
    }
    const auto n = r.table->size();
    const auto closed = g.replace_keys(std::move(r.table));
    spdlog::info("SIGHUP: key file reloaded ({} keys); {} sessions closed", n, closed);
  };
  return run_node(io, g, o, reload, [&g, &o](bool json) {
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
  cc.paths = o.paths;
  cc.connect_timeout = o.connect_timeout;
  cc.reconnect_max = o.reconnect_max;
  cc.path_retry = o.path_retry;
  cc.realtime_links = o.realtime_mode != "off";
  cc.protection = {o.integrity_only, o.require_protection};
  try {
    if (!o.insecure_no_auth) cc.key = tunnel::hs::load_key_file(o.psk_file);
  } catch (const std::exception& e) {
    return fail_startup(e.what());
  }
  cc.groups = o.groups;
  if (o.insecure_no_auth) spdlog::warn("authentication is DISABLED (--insecure-no-auth)");
  std::string prefixes;
  for (const auto& p : o.prefixes) prefixes += (prefixes.empty() ? "" : " ") + p.to_string();
  spdlog::info("CPE id '{}', prefixes {}", o.id, prefixes);
  asio::io_context io;
  tunnel::Client c(io, std::move(cc));
  return run_node(io, c, o, [] { spdlog::info("SIGHUP: nothing to reload on a CPE"); }, [&c, &o](bool json) {
    auto r = Report::of(c, o.tun, o.id, o.prefixes, o.groups);
    if (const auto* p = c.paths()) r.paths = PathReport::of(*p);
    return json ? r.json() : r.text();
  });
}

}  // namespace tunneld
