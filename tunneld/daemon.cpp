// The client (CPE) and server (gateway) roles: set-up, connection handling,
// monitoring and orderly shutdown around one tunnel::Datapath.
#include "options.hpp"
#include "status.hpp"

#include <tunnel/datapath.hpp>
#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/rtnl.hpp>
#include <tunnel/tun_device.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <random>

namespace tunneld {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kExitFailure = 1;

std::string json_escape(std::string_view s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      o += fmt::format("\\u{:04x}", ch);
    } else {
      o += ch;
    }
  }
  return o;
}

std::string ep_str(const tcp::endpoint& e) {
  return e.address().is_v6() ? fmt::format("[{}]:{}", e.address().to_string(), e.port())
                             : fmt::format("{}:{}", e.address().to_string(), e.port());
}

// What both roles share: TUN, data path, status socket, signals, monitoring.
class Core {
 public:
  Core(const CommonOptions& o, const char* role) : o_(o), role_(role), signals_(io_, SIGINT, SIGTERM), tick_(io_) {}

  // Opens the TUN and the netlink clients. Throws with a message for the user.
  void open() {
    tun_.emplace(tunnel::TunConfig{o_.tun, o_.mtu, o_.tun_addresses, o_.tun_offload});
    spdlog::info("TUN {} (ifindex {}) mtu {}{}", tun_->name(), tun_->ifindex(), o_.mtu,
                 tun_->attached_existing() ? ", attached to existing device" : "");
    for (const auto& p : o_.tun_addresses) spdlog::info("TUN {} address {}", tun_->name(), p.to_string());
    pm_.emplace();
    tunnel::DatapathConfig dc;
    dc.mtu = o_.mtu;
    dc.send_queue_bytes = o_.send_queue_bytes;
    dc.allow_non_udp = o_.allow_non_udp;
    dc.vnet_hdr = o_.tun_offload;
    dp_.emplace(io_, tun_->fd(), dc);
  }

  void start_common(std::function<void()> on_signal, std::function<void()> on_tick) {
    status_.emplace(io_, o_.status_socket, [this](bool json) { return render(json); });
    spdlog::info("status socket {}", o_.status_socket);
    signals_.async_wait([this, on_signal](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}: shutting down", sig);
      on_signal();
    });
    on_tick_ = std::move(on_tick);
    schedule_tick();
    dp_->start();
    if (auto g = pm_->events_group()) {
      try {
        events_.emplace(*g);
        event_sd_.emplace(io_, ::dup(events_->fd()));
        wait_events();
      } catch (const std::exception& e) {
        spdlog::warn("MPTCP events unavailable, relying on polling: {}", e.what());
      }
    }
  }

  void stop_all() {
    stopping_ = true;
    boost::system::error_code ec;
    signals_.cancel(ec);
    tick_.cancel();
    if (event_sd_) event_sd_->cancel(ec);
    status_.reset();
    dp_->stop();
  }

  // Called when a connection is attached: tune it, then watch it.
  void connection_up() {
    if (auto ec = tunnel::tune_socket(dp_->socket_fd(), {true, o_.notsent_lowat}))
      spdlog::warn("socket options: {}", ec.message());
    last_subflows_ = -1;
    fallback_warned_ = false;
    dp_->send_heartbeat();
    check_connection();
  }

  // Logs fallback to TCP and changes in the number of subflows.
  void check_connection() {
    const int fd = dp_->socket_fd();
    if (fd < 0) return;
    const auto cs = tunnel::connection_stats(fd);
    token_ = cs.token;
    if (!cs.mptcp) {
      if (!fallback_warned_)
        spdlog::warn("connection fell back to plain TCP: a single path, no failover (is MPTCP blocked on the path?)");
      fallback_warned_ = true;
      return;
    }
    if (static_cast<int>(cs.subflows) != last_subflows_) {
      std::string list;
      for (const auto& sf : cs.subflow) {
        if (sf.state != 1) continue;
        list += fmt::format("{}{} -> {}", list.empty() ? "" : ", ", ep_str(sf.local), ep_str(sf.remote));
      }
      spdlog::info("MPTCP subflows established: {} ({})", cs.subflows, list);
      last_subflows_ = static_cast<int>(cs.subflows);
    }
  }

  std::string render(bool json) {
    const auto& c = dp_->counters();
    std::optional<tunnel::ConnectionStats> cs;
    if (dp_->socket_fd() >= 0) cs = tunnel::connection_stats(dp_->socket_fd());
    const auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
    if (!json) {
      std::string s = fmt::format("role {}  tun {}  state {}  peer {}  up {}s\n", role_, o_.tun, state_,
                                  peer_.empty() ? "-" : peer_, up);
      if (cs) {
        s += fmt::format("connection: {}  subflows established {}\n", cs->mptcp ? "MPTCP" : "plain TCP (fallback)",
                         cs->subflows);
        for (const auto& sf : cs->subflow)
          s += fmt::format("  subflow {} -> {}  state {}  rtt {:.1f}ms  sent {}  acked {}  received {}  retrans {}\n",
                           ep_str(sf.local), ep_str(sf.remote), sf.state == 1 ? "established" : "other",
                           sf.rtt_us / 1000.0, sf.bytes_sent, sf.bytes_acked, sf.bytes_received, sf.total_retrans);
      }
      s += fmt::format(
          "tun->tunnel: read {}  sent {} ({} bytes)  dropped: non-udp {} malformed {} queue-full {} no-tunnel {} "
          "disconnect {}\n",
          c.tun_rx_packets, c.tx_packets, c.tx_bytes, c.drop_non_udp, c.drop_malformed, c.drop_queue_full,
          c.drop_no_tunnel, c.drop_disconnect);
      s += fmt::format("tunnel->tun: received {} ({} bytes)  written {}  dropped: tun-write {}  dsn-gaps {}\n",
                       c.rx_packets, c.rx_bytes, c.tun_tx_packets, c.drop_tun_write, c.dsn_gaps);
      std::uint64_t perr = 0;
      for (auto v : c.proto_errors) perr += v;
      s += fmt::format("connections {}  protocol errors {}\n", c.connections, perr);
      return s;
    }
    std::string s = fmt::format(R"({{"role":"{}","tun":"{}","state":"{}","peer":"{}","uptime_s":{},)", role_,
                                json_escape(o_.tun), state_, json_escape(peer_), up);
    s += R"("connection":)";
    if (cs) {
      s += fmt::format(R"({{"mptcp":{},"token":{},"subflows":{},"subflow":[)", cs->mptcp, cs->token, cs->subflows);
      for (std::size_t i = 0; i < cs->subflow.size(); ++i) {
        const auto& sf = cs->subflow[i];
        s += fmt::format(
            R"({}{{"local":"{}","remote":"{}","established":{},"rtt_us":{},"bytes_sent":{},"bytes_acked":{},"bytes_received":{},"retrans":{}}})",
            i ? "," : "", ep_str(sf.local), ep_str(sf.remote), sf.state == 1, sf.rtt_us, sf.bytes_sent,
            sf.bytes_acked, sf.bytes_received, sf.total_retrans);
      }
      s += "]},";
    } else {
      s += "null,";
    }
    s += fmt::format(
        R"("counters":{{"tun_rx_packets":{},"tx_packets":{},"tx_bytes":{},"drop_non_udp":{},"drop_malformed":{},)"
        R"("drop_queue_full":{},"drop_no_tunnel":{},"drop_disconnect":{},"rx_packets":{},"rx_bytes":{},)"
        R"("tun_tx_packets":{},"tun_writes":{},"drop_tun_write":{},"dsn_gaps":{},"rx_control_frames":{},"tx_heartbeats":{},"connections":{},"send_calls":{},"protocol_errors":{{)",
        c.tun_rx_packets, c.tx_packets, c.tx_bytes, c.drop_non_udp, c.drop_malformed, c.drop_queue_full,
        c.drop_no_tunnel, c.drop_disconnect, c.rx_packets, c.rx_bytes, c.tun_tx_packets, c.tun_writes, c.drop_tun_write,
        c.dsn_gaps, c.rx_control_frames, c.tx_heartbeats, c.connections, c.send_calls);
    for (int i = 2; i < tunnel::wire::kParseStatusCount; ++i)
      s += fmt::format(R"({}"{}":{})", i > 2 ? "," : "", tunnel::wire::to_string(static_cast<tunnel::wire::ParseStatus>(i)),
                       c.proto_errors[static_cast<std::size_t>(i)]);
    s += "}}}\n";
    return s;
  }

  asio::io_context io_;
  const CommonOptions& o_;
  const char* role_;
  std::optional<tunnel::TunDevice> tun_;
  std::optional<tunnel::netlink::MptcpPm> pm_;
  std::optional<tunnel::Datapath> dp_;
  std::string state_ = "starting";
  std::string peer_;
  std::uint32_t token_ = 0;
  bool stopping_ = false;
  std::function<void(const tunnel::netlink::PmEventMsg&)> on_event_;

 private:
  void schedule_tick() {
    tick_.expires_after(o_.stats_interval);
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      check_connection();
      dp_->send_heartbeat();
      if (on_tick_) on_tick_();
      schedule_tick();
    });
  }

  void wait_events() {
    event_sd_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      for (const auto& ev : events_->read()) {
        if (ev.token != token_ || token_ == 0) continue;
        if (ev.type == tunnel::uapi::kEventSubEstablished || ev.type == tunnel::uapi::kEventSubClosed) {
          const std::string saddr = ev.saddr ? ev.saddr->to_string() : "?";
          const std::string daddr = ev.daddr ? ev.daddr->to_string() : "?";
          if (ev.type == tunnel::uapi::kEventSubEstablished)
            spdlog::info("subflow up: {}:{} -> {}:{} (ifindex {})", saddr, ev.sport, daddr, ev.dport, ev.ifindex);
          else
            spdlog::warn("subflow closed: {}:{} -> {}:{} (ifindex {}, error {})", saddr, ev.sport, daddr, ev.dport,
                         ev.ifindex, ev.error);
          check_connection();
        }
        if (on_event_) on_event_(ev);
      }
      wait_events();
    });
  }

  asio::signal_set signals_;
  asio::steady_timer tick_;
  std::function<void()> on_tick_;
  std::optional<StatusServer> status_;
  std::optional<tunnel::netlink::PmEventSocket> events_;
  std::optional<asio::posix::stream_descriptor> event_sd_;
  int last_subflows_ = -1;
  bool fallback_warned_ = false;
  Clock::time_point started_ = Clock::now();
};

int fail_startup(const std::exception& e) {
  spdlog::error("{}", e.what());
  std::cerr << "tunneld: " << e.what() << "\n";
  return kExitFailure;
}

}  // namespace

// ------------------------------------------------------------------- server

int run_server(const ServerOptions& o) {
  if (auto missing = tunnel::check_kernel_support(); !missing.empty()) {
    std::cerr << "tunneld: " << missing << "\n";
    return kExitFailure;
  }
  Core core(o, "server");
  std::optional<tunnel::PathSetup> paths;
  tcp::acceptor acceptor(core.io_);
  try {
    core.open();
    // Joins arrive on the listening socket; accept as many subflows as the PM allows.
    paths.emplace(*core.pm_, std::vector<tunnel::PathSpec>{}, o.listen.address().is_v4() ? AF_INET : AF_INET6,
                  tunnel::uapi::kPmMaxLimit, tunnel::uapi::kPmMaxLimit);
    const int fd = tunnel::open_mptcp_socket(o.listen.address().is_v4() ? AF_INET : AF_INET6);
    acceptor.assign(o.listen.protocol(), fd);
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(o.listen);
    acceptor.listen(64);
  } catch (const std::exception& e) {
    return fail_startup(e);
  }
  spdlog::info("listening on {} (MPTCP)", ep_str(o.listen));
  core.state_ = "listening";

  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || core.stopping_) return;
      if (ec) {
        spdlog::warn("accept: {}", ec.message());
      } else {
        boost::system::error_code pec;
        const auto peer = s.remote_endpoint(pec);
        const std::string peer_s = pec ? "?" : ep_str(peer);
        if (core.dp_->attached()) spdlog::info("new connection from {} replaces the one from {}", peer_s, core.peer_);
        spdlog::info("connection from {}", peer_s);
        core.dp_->attach(std::move(s), [&core, peer_s](const std::string& reason) {
          spdlog::warn("connection from {} closed: {}", peer_s, reason);
          core.state_ = "listening";
          core.peer_.clear();
        });
        core.state_ = "connected";
        core.peer_ = peer_s;
        core.connection_up();
      }
      accept_next();
    });
  };
  accept_next();

  core.start_common(
      [&] {
        boost::system::error_code ec;
        acceptor.close(ec);
        core.dp_->close_gracefully();
        core.stop_all();
      },
      nullptr);
  core.io_.run();
  spdlog::info("stopped");
  return 0;
}

// ------------------------------------------------------------------- client

namespace {

class Client {
 public:
  explicit Client(const ClientOptions& o) : o_(o), core_(o, "client"), retry_(core_.io_), connect_timer_(core_.io_) {}

  int run() {
    if (auto missing = tunnel::check_kernel_support(); !missing.empty()) {
      std::cerr << "tunneld: " << missing << "\n";
      return kExitFailure;
    }
    const int family = o_.server.address().is_v4() ? AF_INET : AF_INET6;
    try {
      core_.open();
      std::vector<tunnel::PathSpec> specs;
      for (const auto& p : o_.paths) specs.push_back({p, 0});
      for (const auto& p : o_.backup_paths) specs.push_back({p, tunnel::uapi::kPmAddrFlagBackup});
      paths_.emplace(*core_.pm_, specs, family, static_cast<std::uint32_t>(specs.size()), tunnel::uapi::kPmMaxLimit);
    } catch (const std::exception& e) {
      return fail_startup(e);
    }
    core_.start_common([this] { shutdown(); }, [this] { maintain_paths(); });
    connect();
    core_.io_.run();
    paths_.reset();  // endpoints go before the process does
    spdlog::info("stopped");
    return 0;
  }

 private:
  void connect() {
    if (core_.stopping_) return;
    core_.state_ = "connecting";
    sock_.emplace(core_.io_);
    try {
      sock_->assign(o_.server.protocol(), tunnel::open_mptcp_socket(o_.server.address().is_v4() ? AF_INET : AF_INET6));
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      schedule_retry(e.what());
      return;
    }
    connect_timer_.expires_after(o_.connect_timeout);
    connect_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && sock_) sock_->close();  // abandons the attempt: its handler sees operation_aborted
    });
    sock_->async_connect(o_.server, [this](const boost::system::error_code& ec) {
      connect_timer_.cancel();
      if (core_.stopping_) return;
      if (ec) {
        sock_.reset();
        schedule_retry(ec == asio::error::operation_aborted ? "timed out" : ec.message());
        return;
      }
      if (attempts_ > 0) spdlog::info("connected to {} after {} failed attempts", ep_str(o_.server), attempts_);
      else spdlog::info("connected to {}", ep_str(o_.server));
      attempts_ = 0;
      tcp::socket& s = *sock_;
      core_.dp_->attach(std::move(s), [this](const std::string& reason) {
        spdlog::warn("connection to {} lost: {}", ep_str(o_.server), reason);
        schedule_retry("connection lost");
      });
      sock_.reset();
      core_.state_ = "connected";
      core_.peer_ = ep_str(o_.server);
      core_.connection_up();
    });
  }

  void schedule_retry(const std::string& why) {
    if (core_.stopping_) return;
    core_.state_ = "reconnecting";
    core_.peer_.clear();
    ++attempts_;
    // Exponential backoff from 100 ms to --reconnect-max, with +-25% jitter.
    const double base = std::min<double>(100.0 * std::pow(2.0, std::min(attempts_ - 1, 16)),
                                         static_cast<double>(o_.reconnect_max.count()));
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    const auto delay = std::chrono::milliseconds(static_cast<long>(base * jitter(rng_)));
    if (attempts_ <= 5 || attempts_ % 30 == 0)
      spdlog::warn("cannot reach server {} ({}); attempt {}, retrying in {} ms", ep_str(o_.server), why, attempts_,
                   delay.count());
    retry_.expires_after(delay);
    retry_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) connect();
    });
  }

  // A path whose endpoint has had no established subflow for two checks in a
  // row gets its endpoint deleted and re-added, at most every --path-retry.
  void maintain_paths() {
    const int fd = core_.dp_->socket_fd();
    if (fd < 0 || !paths_) return;
    const auto cs = tunnel::connection_stats(fd);
    if (!cs.mptcp) return;
    const auto& eps = paths_->added();
    missing_.resize(eps.size(), 0);
    last_rebuild_.resize(eps.size());
    const auto now = Clock::now();
    for (std::size_t i = 0; i < eps.size(); ++i) {
      const bool up = std::any_of(cs.subflow.begin(), cs.subflow.end(), [&](const tunnel::SubflowStats& s) {
        return s.state == 1 && s.local.address() == eps[i].addr;
      });
      if (up) {
        if (missing_[i] > 2) spdlog::info("path {}: subflow is back", paths_->path_name(i));
        missing_[i] = 0;
        continue;
      }
      if (++missing_[i] < 2 || now - last_rebuild_[i] < o_.path_retry) continue;
      last_rebuild_[i] = now;
      try {
        paths_->rebuild(i);
        if (missing_[i] <= 3 || missing_[i] % 30 == 0)
          spdlog::info("path {}: no subflow, re-added endpoint {} (id {}) to open one", paths_->path_name(i),
                       eps[i].addr.to_string(), eps[i].id);
      } catch (const std::exception& e) {
        spdlog::warn("path {}: rebuilding its endpoint failed: {}", paths_->path_name(i), e.what());
      }
    }
  }

  void shutdown() {
    retry_.cancel();
    connect_timer_.cancel();
    if (sock_) sock_->close();
    core_.dp_->close_gracefully();
    core_.stop_all();
  }

  const ClientOptions& o_;
  Core core_;
  std::optional<tunnel::PathSetup> paths_;
  std::optional<tcp::socket> sock_;
  asio::steady_timer retry_, connect_timer_;
  int attempts_ = 0;
  std::vector<int> missing_;                  // checks in a row without a subflow, per path
  std::vector<Clock::time_point> last_rebuild_;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace

int run_client(const ClientOptions& o) {
  Client c(o);
  return c.run();
}

}  // namespace tunneld
