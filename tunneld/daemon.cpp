// The client (CPE) and server (gateway) roles: set-up, handshakes, sessions,
// monitoring and orderly shutdown.
#include "handshake_conn.hpp"
#include "options.hpp"
#include "report.hpp"
#include "status.hpp"

#include <tunnel/cpe_table.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/session.hpp>
#include <tunnel/tun_device.hpp>
#include <tunnel/tun_port.hpp>

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
#include <unordered_map>
#include <memory>
#include <optional>
#include <random>
#include <set>

namespace tunneld {
namespace asio = boost::asio;
namespace wire = tunnel::wire;
namespace hs = tunnel::hs;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kExitFailure = 1;

tunnel::SessionConfig session_config(const CommonOptions& o) {
  tunnel::SessionConfig c;
  c.mtu = o.mtu;
  c.send_queue_bytes = o.send_queue_bytes;
  c.buffer_bytes = o.buffer_bytes;
  c.buffer_age = o.buffer_age;
  c.heartbeat = o.heartbeat;
  c.dead_interval = o.dead_interval;
  c.hold = o.session_hold;
  c.batch_bytes = o.batch_bytes;
  c.compress = o.header_compression;
  return c;
}

// What both roles share: TUN, status socket, signals, the session tick,
// monitoring of MPTCP events.
class Core {
 public:
  Core(const CommonOptions& o, const char* role)
      : o_(o), role_(role), signals_(io_, SIGINT, SIGTERM), tick_(io_), stats_tick_(io_) {}

  // Opens the TUN and the netlink clients. Throws with a message for the user.
  void open(tunnel::TunPort::Sink sink) {
    tun_.emplace(tunnel::TunConfig{o_.tun, o_.mtu, o_.tun_addresses, o_.tun_offload});
    spdlog::info("TUN {} (ifindex {}) mtu {}{}", tun_->name(), tun_->ifindex(), o_.mtu,
                 tun_->attached_existing() ? ", attached to existing device" : "");
    for (const auto& p : o_.tun_addresses) spdlog::info("TUN {} address {}", tun_->name(), p.to_string());
    pm_.emplace();
    tunnel::TunPortConfig tc;
    tc.mtu = o_.mtu;
    tc.allow_non_udp = o_.allow_non_udp;
    tc.vnet_hdr = o_.tun_offload;
    port_.emplace(io_, tun_->fd(), tc, std::move(sink));
    port_->on_batch_end([this] {
      for (auto* s : dirty_) s->flush();
      dirty_.clear();
    });
  }

  // `on_tick` runs every session tick (100 ms at most), `on_stats` every
  // --stats-interval, `on_event` for each MPTCP PM event.
  void start(std::function<void()> on_signal, std::function<void(Clock::time_point)> on_tick,
             std::function<void()> on_stats, std::function<void(const tunnel::netlink::PmEventMsg&)> on_event,
             StatusServer::Render render) {
    status_.emplace(io_, o_.status_socket, std::move(render));
    spdlog::info("status socket {}", o_.status_socket);
    signals_.async_wait([this, on_signal](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}: shutting down", sig);
      on_signal();
    });
    on_tick_ = std::move(on_tick);
    on_stats_ = std::move(on_stats);
    on_event_ = std::move(on_event);
    tick_period_ = std::min(std::chrono::milliseconds(100), o_.heartbeat / 4);
    schedule_tick();
    schedule_stats();
    port_->start();
    if (auto g = pm_->events_group()) {
      try {
        events_.emplace(*g);
        event_sd_.emplace(io_, ::dup(events_->fd()));
        wait_events();
      } catch (const std::exception& e) {
        spdlog::warn("MPTCP events unavailable, relying on the heartbeat: {}", e.what());
      }
    }
  }

  void stop_all() {
    stopping_ = true;
    boost::system::error_code ec;
    signals_.cancel(ec);
    tick_.cancel();
    stats_tick_.cancel();
    if (event_sd_) event_sd_->cancel(ec);
    status_.reset();
    port_->stop();
  }

  void mark_dirty(tunnel::Session* s) { dirty_.push_back(s); }
  void forget(tunnel::Session* s) { std::erase(dirty_, s); }

  asio::io_context io_;
  const CommonOptions& o_;
  const char* role_;
  std::optional<tunnel::TunDevice> tun_;
  std::optional<tunnel::netlink::MptcpPm> pm_;
  std::optional<tunnel::TunPort> port_;
  bool stopping_ = false;
  Clock::time_point started_ = Clock::now();

 private:
  void schedule_tick() {
    tick_.expires_after(tick_period_);
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      if (on_tick_) on_tick_(Clock::now());
      schedule_tick();
    });
  }
  void schedule_stats() {
    stats_tick_.expires_after(o_.stats_interval);
    stats_tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      if (on_stats_) on_stats_();
      schedule_stats();
    });
  }
  void wait_events() {
    event_sd_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      for (const auto& ev : events_->read())
        if (on_event_) on_event_(ev);
      wait_events();
    });
  }

  asio::signal_set signals_;
  asio::steady_timer tick_, stats_tick_;
  std::chrono::milliseconds tick_period_{100};
  std::function<void(Clock::time_point)> on_tick_;
  std::function<void()> on_stats_;
  std::function<void(const tunnel::netlink::PmEventMsg&)> on_event_;
  std::optional<StatusServer> status_;
  std::optional<tunnel::netlink::PmEventSocket> events_;
  std::optional<asio::posix::stream_descriptor> event_sd_;
  std::vector<tunnel::Session*> dirty_;
};

int fail_startup(const std::string& what) {
  spdlog::error("{}", what);
  std::cerr << "tunneld: " << what << "\n";
  return kExitFailure;
}

// Watches one connection's subflows: logs fallback and changes in count.
struct ConnWatch {
  int last_subflows = -1;
  bool fallback_warned = false;
  // Returns the number of established subflows (-1: not MPTCP).
  int check(int fd, const std::string& who) {
    if (fd < 0) return -1;
    const auto cs = tunnel::connection_stats(fd);
    if (!cs.mptcp) {
      if (!fallback_warned)
        spdlog::warn("{}: connection fell back to plain TCP: a single path, no failover (is MPTCP blocked on the path?)",
                     who);
      fallback_warned = true;
      return -1;
    }
    if (static_cast<int>(cs.subflows) != last_subflows) {
      std::string list;
      for (const auto& sf : cs.subflow) {
        if (sf.state != 1) continue;
        list += fmt::format("{}{} -> {}", list.empty() ? "" : ", ", ep_str(sf.local), ep_str(sf.remote));
      }
      spdlog::info("{}: MPTCP subflows established: {} ({})", who, cs.subflows, list);
      last_subflows = static_cast<int>(cs.subflows);
    }
    return static_cast<int>(cs.subflows);
  }
};

void log_subflow_event(const tunnel::netlink::PmEventMsg& ev, const std::string& who) {
  const std::string saddr = ev.saddr ? ev.saddr->to_string() : "?";
  const std::string daddr = ev.daddr ? ev.daddr->to_string() : "?";
  if (ev.type == tunnel::uapi::kEventSubEstablished)
    spdlog::info("{}: subflow up: {}:{} -> {}:{} (ifindex {})", who, saddr, ev.sport, daddr, ev.dport, ev.ifindex);
  else
    spdlog::warn("{}: subflow closed: {}:{} -> {}:{} (ifindex {}, error {})", who, saddr, ev.sport, daddr, ev.dport,
                 ev.ifindex, ev.error);
}

// Socket options of an established tunnel connection (--notsent-lowat,
// --congestion, --socket-rcvbuf); problems are logged, the connection is used
// anyway.
void tune_connection(int fd, const CommonOptions& o, const std::string& who) {
  if (auto ec = tunnel::tune_socket(fd, {true, o.notsent_lowat, o.congestion, o.socket_rcvbuf}))
    spdlog::warn("{}: socket options: {}", who, ec.message());
  const int got = tunnel::socket_rcvbuf(fd);
  if (o.socket_rcvbuf && got >= 0 && static_cast<std::size_t>(got) < 2 * o.socket_rcvbuf)
    spdlog::warn("{}: receive buffer {} bytes, asked for {} (no CAP_NET_ADMIN, and net.core.rmem_max is lower)", who,
                 got / 2, o.socket_rcvbuf);
}

// After a subflow closed: a connection left with no established subflow
// cannot carry anything, though the kernel keeps its socket open. Ends it so
// the session reconnects now instead of after the dead interval.
void abort_if_no_subflow(tunnel::Session& s, const std::string& who) {
  const int fd = s.socket_fd();
  if (fd < 0) return;
  const auto cs = tunnel::connection_stats(fd);
  if (cs.mptcp && cs.subflows == 0) {
    spdlog::warn("{}: no subflow left", who);
    s.abort("no subflow left");
  }
}

}  // namespace

// ------------------------------------------------------------------- server

namespace {

class Server {
 public:
  explicit Server(const ServerOptions& o) : o_(o), core_(o, "server"), acceptor_(core_.io_), table_(o.max_cpes) {}

  int run() {
    if (auto missing = tunnel::check_kernel_support(); !missing.empty()) return fail_startup(missing);
    try {
      if (!o_.insecure_no_auth) keys_ = hs::load_key_table(o_.psk_file);
      core_.open([this](std::span<const std::uint8_t> pkt) { route(pkt); });
      // Joins arrive on the listening socket; accept as many subflows as the PM allows.
      paths_.emplace(*core_.pm_, std::vector<tunnel::PathSpec>{}, o_.listen.address().is_v4() ? AF_INET : AF_INET6,
                     tunnel::uapi::kPmMaxLimit, tunnel::uapi::kPmMaxLimit);
      const int fd = tunnel::open_mptcp_socket(o_.listen.address().is_v4() ? AF_INET : AF_INET6);
      acceptor_.assign(o_.listen.protocol(), fd);
      // Accepted connections inherit it; joins take the connection's.
      if (auto ec = tunnel::tune_socket(fd, {false, 0, o_.congestion}); ec && !o_.congestion.empty())
        throw std::runtime_error("--congestion " + o_.congestion + ": " + ec.message() +
                                 " (see net.ipv4.tcp_available_congestion_control)");
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(o_.listen);
      acceptor_.listen(256);
    } catch (const std::exception& e) {
      return fail_startup(e.what());
    }
    if (o_.insecure_no_auth) spdlog::warn("authentication is DISABLED (--insecure-no-auth): any CPE may connect");
    else
      spdlog::info("CPE keys loaded: {} by id{}", keys_.by_id.size(), keys_.any ? ", plus one for any id" : "");
    spdlog::info("listening on {} (MPTCP)", ep_str(o_.listen));
    accept_next();
    core_.start([this] { shutdown(); }, [this](Clock::time_point now) { tick(now); }, [this] { stats(); },
                [this](const tunnel::netlink::PmEventMsg& ev) { on_event(ev); },
                [this](bool json) { return render(json); });
    core_.io_.run();
    spdlog::info("stopped");
    return 0;
  }

 private:
  struct Cpe {
    std::unique_ptr<tunnel::Session> session;
    std::string id;
    std::vector<tunnel::Prefix> prefixes;
    std::string remote;
    ConnWatch watch;
    Clock::time_point since = Clock::now();
  };

  // ---- accepting and the handshake

  void accept_next() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || core_.stopping_) return;
      if (ec) {
        spdlog::warn("accept: {}", ec.message());
      } else {
        boost::system::error_code pec;
        const auto peer = s.remote_endpoint(pec);
        start_handshake(std::move(s), pec ? std::string("?") : ep_str(peer));
      }
      accept_next();
    });
  }

  void start_handshake(tcp::socket s, std::string peer) {
    if (pending_.size() >= o_.max_pending) {
      if (++dc_.rejected_pending % 100 == 1)
        spdlog::warn("connection from {} refused: {} handshakes pending (--max-pending); {} refused so far", peer,
                     pending_.size(), dc_.rejected_pending);
      return;  // the socket closes here
    }
    auto hc = std::make_shared<HandshakeConn>(std::move(s), std::move(peer));
    pending_.insert(hc);
    hc->set_deadline(o_.handshake_timeout);
    const hs::Challenge ch{hs::random_nonce()};
    std::vector<std::uint8_t> body;
    hs::encode(ch, body);
    if (!hc->send_frame(wire::FrameType::challenge, body)) {
      refuse(hc, "cannot send the challenge", {});
      return;
    }
    hc->read_frame([this, hc, ch](wire::ParseStatus st, const wire::Frame& f, const std::string& why) {
      on_hello(hc, ch.nonce, st, f, why);
    });
  }

  void refuse(const std::shared_ptr<HandshakeConn>& hc, const std::string& why, std::string_view error) {
    spdlog::warn("handshake from {} failed: {}", hc->peer(), why);
    ++dc_.handshake_failures;
    if (!error.empty()) hc->send_error(error);
    hc->close();
    pending_.erase(hc);
  }

  void on_hello(const std::shared_ptr<HandshakeConn>& hc, const hs::Nonce& server_nonce, wire::ParseStatus st,
                const wire::Frame& f, const std::string& why) {
    if (st != wire::ParseStatus::ok) {
      if (st == wire::ParseStatus::need_more) {  // timeout or closed: no frame at all
        if (why == "handshake timed out") ++dc_.handshake_timeouts;
        refuse(hc, why, {});
        return;
      }
      ++dc_.proto_errors[static_cast<std::size_t>(st)];
      refuse(hc, "malformed frame: " + why, st == wire::ParseStatus::bad_version ? hs::kErrVersion : hs::kErrMalformed);
      return;
    }
    if (f.type != wire::FrameType::hello) {
      refuse(hc, fmt::format("expected HELLO, got {}", wire::to_string(f.type)), hs::kErrMalformed);
      return;
    }
    std::string bad;
    auto hello = hs::decode_hello(f.body, bad);
    if (!hello) {
      refuse(hc, "malformed HELLO: " + bad, hs::kErrMalformed);
      return;
    }
    const hs::Key* key = nullptr;
    if (!o_.insecure_no_auth) {
      key = keys_.find(hello->id);
      if (!key) {
        ++dc_.auth_failures;
        refuse(hc, fmt::format("unknown CPE id '{}'", hello->id), hs::kErrUnknownId);
        return;
      }
      if (!hs::verify_hello(f.body, *key, server_nonce)) {
        ++dc_.auth_failures;
        refuse(hc, fmt::format("CPE '{}': wrong proof of the key", hello->id), hs::kErrBadProof);
        return;
      }
    }
    std::uint64_t fresh = 0;
    while (fresh == 0 || cpes_.count(fresh)) fresh = hs::random_u64();
    const auto adm = table_.admit(hello->id, hello->resume_session, hello->prefixes, fresh);
    if (adm.verdict == tunnel::CpeTable::Verdict::reject) {
      refuse(hc, fmt::format("CPE '{}': {}", hello->id, adm.error), adm.error);
      return;
    }
    if (adm.replaces) destroy(adm.replaces, "replaced by a new session of the same CPE", dc_.sessions_replaced);
    const bool resumed = adm.verdict == tunnel::CpeTable::Verdict::resume;
    Cpe* cpe;
    if (resumed) {
      cpe = &cpes_.at(adm.session_id);
      cpe->session->detach("resumed on a new connection");  // an old connection that did not notice yet
    } else {
      const std::uint64_t sid = adm.session_id;
      cpe = &cpes_[sid];
      cpe->session = std::make_unique<tunnel::Session>(
          core_.io_, *core_.port_, session_config(o_), sid, [this, sid](std::span<const std::uint8_t> pkt) {
            tunnel::PacketAddrs a;
            return tunnel::packet_addrs(pkt, a) && table_.source_allowed(sid, a.family, a.src);
          });
      ++dc_.sessions_created;
    }
    table_.insert(adm.session_id, hello->id, hello->prefixes);
    cpe->id = hello->id;
    cpe->prefixes = hello->prefixes;
    cpe->remote = hc->peer();
    cpe->watch = {};

    hs::HelloAck ack{adm.session_id, resumed ? cpe->session->rx_last() : 0, resumed,
                     static_cast<std::uint32_t>(o_.heartbeat.count()), {}};
    std::vector<std::uint8_t> body;
    hs::encode(ack, body);
    if (key) hs::sign_hello_ack(body, *key, hello->nonce, server_nonce);
    if (!hc->send_frame(wire::FrameType::hello_ack, body)) {
      refuse(hc, "cannot send HELLO_ACK", {});
      return;
    }
    pending_.erase(hc);
    const auto early = hc->leftover();
    const std::uint64_t sid = adm.session_id;
    const std::uint64_t peer_rx = resumed ? hello->resume_rx_dsn : 0;
    const auto replayed0 = cpe->session->counters().replayed;
    cpe->session->attach(hc->take_socket(), early, peer_rx, [this, sid](const std::string& reason, bool clean) {
      on_session_closed(sid, reason, clean);
    });
    const auto replay = cpe->session->counters().replayed - replayed0;
    if (resumed)
      spdlog::info("CPE '{}' from {}: resumed session {:016x} (it had {}, we had {}; replaying {} frames)", cpe->id,
                   cpe->remote, sid, hello->resume_rx_dsn, ack.rx_dsn, replay);
    else
      spdlog::info("CPE '{}' from {}: new session {:016x}{}", cpe->id, cpe->remote, sid,
                   hello->resume_session ? fmt::format(" (session {:016x} was not held)", hello->resume_session) : "");
    tune_connection(cpe->session->socket_fd(), o_, "CPE '" + cpe->id + "'");
    cpe->session->token = tunnel::connection_stats(cpe->session->socket_fd()).token;
    cpe->watch.check(cpe->session->socket_fd(), "CPE '" + cpe->id + "'");
  }

  // ---- sessions

  void on_session_closed(std::uint64_t sid, const std::string& reason, bool clean) {
    auto it = cpes_.find(sid);
    if (it == cpes_.end()) return;
    if (clean) {
      spdlog::info("CPE '{}': session {:016x} closed by the CPE", it->second.id, sid);
      destroy(sid, nullptr, dc_.sessions_closed);
      return;
    }
    spdlog::warn("CPE '{}': connection lost ({}); holding session {:016x} for {} ms", it->second.id, reason, sid,
                 o_.session_hold.count());
  }

  void destroy(std::uint64_t sid, const char* why, std::uint64_t& counter) {
    auto it = cpes_.find(sid);
    if (it == cpes_.end()) return;
    auto& s = *it->second.session;
    const std::size_t lost = s.buffer().packets();
    if (why)
      spdlog::warn("CPE '{}': session {:016x} destroyed: {}; {} buffered packets dropped", it->second.id, sid, why, lost);
    s.close();
    ++counter;
    core_.forget(&s);
    retired_.add(s);
    table_.erase(sid);
    cpes_.erase(it);
  }

  void route(std::span<const std::uint8_t> pkt) {
    tunnel::PacketAddrs a;
    const std::uint64_t sid = tunnel::packet_addrs(pkt, a) ? table_.route(a.family, a.dst) : 0;
    auto it = sid ? cpes_.find(sid) : cpes_.end();
    if (it == cpes_.end()) {
      ++dc_.drop_no_route;
      return;
    }
    if (it->second.session->enqueue(pkt)) core_.mark_dirty(it->second.session.get());
  }

  void tick(Clock::time_point now) {
    std::vector<std::uint64_t> expired;
    for (auto& [sid, cpe] : cpes_)
      if (!cpe.session->tick(now)) expired.push_back(sid);
    for (auto sid : expired)
      destroy(sid, fmt::format("not resumed within {} ms", o_.session_hold.count()).c_str(), dc_.sessions_expired);
  }

  void stats() {
    for (auto& [sid, cpe] : cpes_) cpe.watch.check(cpe.session->socket_fd(), "CPE '" + cpe.id + "'");
  }

  void on_event(const tunnel::netlink::PmEventMsg& ev) {
    if (ev.type != tunnel::uapi::kEventSubEstablished && ev.type != tunnel::uapi::kEventSubClosed) return;
    for (auto& [sid, cpe] : cpes_) {
      if (cpe.session->token == 0 || cpe.session->token != ev.token) continue;
      const std::string who = "CPE '" + cpe.id + "'";
      log_subflow_event(ev, who);
      if (ev.type == tunnel::uapi::kEventSubClosed) abort_if_no_subflow(*cpe.session, who);
      else cpe.watch.check(cpe.session->socket_fd(), who);
      return;
    }
  }

  void shutdown() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& hc : pending_) hc->close();
    pending_.clear();
    for (auto& [sid, cpe] : cpes_) cpe.session->close();
    core_.stop_all();
  }

  std::string render(bool json) {
    Report r(core_.role_, core_.o_.tun, cpes_.empty() ? "listening" : "serving", Clock::now() - core_.started_);
    r.tun = core_.port_->counters();
    r.daemon = dc_;
    r.totals = retired_;
    for (auto& [sid, cpe] : cpes_) {
      r.totals.add(*cpe.session);
      r.sessions.push_back(SessionReport::of(*cpe.session, cpe.id, cpe.remote, cpe.prefixes));
    }
    return json ? r.json() : r.text();
  }

  const ServerOptions& o_;
  Core core_;
  std::optional<tunnel::PathSetup> paths_;
  tcp::acceptor acceptor_;
  hs::KeyTable keys_;
  tunnel::CpeTable table_;
  std::unordered_map<std::uint64_t, Cpe> cpes_;  // looked up per packet
  std::set<std::shared_ptr<HandshakeConn>> pending_;
  DaemonCounters dc_;
  Totals retired_;
};

}  // namespace

int run_server(const ServerOptions& o) {
  Server s(o);
  return s.run();
}

// ------------------------------------------------------------------- client

namespace {

class Client {
 public:
  explicit Client(const ClientOptions& o) : o_(o), core_(o, "client"), retry_(core_.io_), connect_timer_(core_.io_) {}

  int run() {
    if (auto missing = tunnel::check_kernel_support(); !missing.empty()) return fail_startup(missing);
    const int family = o_.server.address().is_v4() ? AF_INET : AF_INET6;
    try {
      if (!o_.insecure_no_auth) key_ = hs::load_key_file(o_.psk_file);
      core_.open([this](std::span<const std::uint8_t> pkt) {
        if (session_->enqueue(pkt)) core_.mark_dirty(session_.get());
      });
      session_ = std::make_unique<tunnel::Session>(core_.io_, *core_.port_, session_config(o_), 0);
      std::vector<tunnel::PathSpec> specs;
      for (const auto& p : o_.paths) specs.push_back({p, 0});
      for (const auto& p : o_.backup_paths) specs.push_back({p, tunnel::uapi::kPmAddrFlagBackup});
      paths_.emplace(*core_.pm_, specs, family, static_cast<std::uint32_t>(specs.size()), tunnel::uapi::kPmMaxLimit);
    } catch (const std::exception& e) {
      return fail_startup(e.what());
    }
    if (o_.insecure_no_auth) spdlog::warn("authentication is DISABLED (--insecure-no-auth)");
    spdlog::info("CPE id '{}', prefixes {}", o_.id, prefixes_str());
    core_.start([this] { shutdown(); }, [this](Clock::time_point now) { tick(now); }, [this] { stats(); },
                [this](const tunnel::netlink::PmEventMsg& ev) { on_event(ev); },
                [this](bool json) { return render(json); });
    connect();
    core_.io_.run();
    paths_.reset();  // endpoints go before the process does
    spdlog::info("stopped");
    return 0;
  }

 private:
  std::string prefixes_str() const {
    std::string s;
    for (const auto& p : o_.prefixes) s += (s.empty() ? "" : " ") + p.to_string();
    return s;
  }

  void connect() {
    if (core_.stopping_) return;
    state_ = "connecting";
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
      state_ = "handshaking";
      hc_ = std::make_shared<HandshakeConn>(std::move(*sock_), ep_str(o_.server));
      sock_.reset();
      hc_->set_deadline(o_.connect_timeout);
      hc_->read_frame([this](wire::ParseStatus st, const wire::Frame& f, const std::string& why) {
        on_challenge(st, f, why);
      });
    });
  }

  bool handshake_failed(wire::ParseStatus st, const wire::Frame& f, const std::string& why, wire::FrameType want) {
    std::string reason;
    if (st != wire::ParseStatus::ok) reason = why;
    else if (f.type == wire::FrameType::error)
      reason = "gateway refused: " + std::string(reinterpret_cast<const char*>(f.body.data()), f.body.size());
    else if (f.type != want)
      reason = fmt::format("expected {}, got {}", wire::to_string(want), wire::to_string(f.type));
    if (reason.empty()) return false;
    hc_->close();
    hc_.reset();
    schedule_retry("handshake: " + reason);
    return true;
  }

  void on_challenge(wire::ParseStatus st, const wire::Frame& f, const std::string& why) {
    if (handshake_failed(st, f, why, wire::FrameType::challenge)) return;
    std::string bad;
    auto ch = hs::decode_challenge(f.body, bad);
    if (!ch) {
      handshake_failed(wire::ParseStatus::bad_length, f, "bad CHALLENGE: " + bad, wire::FrameType::challenge);
      return;
    }
    hs::Hello h;
    h.capabilities = o_.tun_offload ? hs::kCapUdpGso : 0;
    h.nonce = hs::random_nonce();
    h.resume_session = session_->id();
    h.resume_rx_dsn = session_->rx_last();
    h.id = o_.id;
    h.prefixes = o_.prefixes;
    std::vector<std::uint8_t> body;
    hs::encode(h, body);
    hs::sign_hello(body, key_, ch->nonce);
    if (!hc_->send_frame(wire::FrameType::hello, body)) {
      handshake_failed(wire::ParseStatus::need_more, f, "cannot send HELLO", wire::FrameType::hello);
      return;
    }
    hc_->read_frame([this, cn = h.nonce, sn = ch->nonce](wire::ParseStatus st2, const wire::Frame& f2,
                                                          const std::string& why2) {
      on_hello_ack(cn, sn, st2, f2, why2);
    });
  }

  void on_hello_ack(const hs::Nonce& cn, const hs::Nonce& sn, wire::ParseStatus st, const wire::Frame& f,
                    const std::string& why) {
    if (handshake_failed(st, f, why, wire::FrameType::hello_ack)) return;
    std::string bad;
    auto ack = hs::decode_hello_ack(f.body, bad);
    if (!ack) {
      handshake_failed(wire::ParseStatus::bad_length, f, "bad HELLO_ACK: " + bad, wire::FrameType::hello_ack);
      return;
    }
    if (!o_.insecure_no_auth && !hs::verify_hello_ack(f.body, key_, cn, sn)) {
      handshake_failed(wire::ParseStatus::bad_length, f, "the gateway's proof of the key is wrong",
                       wire::FrameType::hello_ack);
      return;
    }
    const std::uint64_t old = session_->id();
    if (!ack->resumed && old != 0) {
      spdlog::warn("gateway did not resume session {:016x}: new session {:016x}; {} packets buffered for the old one "
                   "are dropped",
                   old, ack->session_id, session_->buffer().packets());
      session_->reset(ack->session_id);
    }
    session_->assign_id(ack->session_id);
    const int attempts_before = attempts_;
    attempts_ = 0;
    const auto early = hc_->leftover();
    const auto replayed0 = session_->counters().replayed;
    session_->attach(hc_->take_socket(), early, ack->resumed ? ack->rx_dsn : 0,
                     [this](const std::string& reason, bool clean) {
                       if (clean) {  // the gateway ended the session (it is stopping)
                         spdlog::warn("gateway closed session {:016x}; {} buffered packets dropped", session_->id(),
                                      session_->buffer().packets());
                         ++dc_.sessions_closed;
                         session_->reset(0);
                       } else {
                         spdlog::warn("connection to {} lost: {}", ep_str(o_.server), reason);
                       }
                       schedule_retry(clean ? "session closed by the gateway" : "connection lost");
                     });
    hc_.reset();
    state_ = "connected";
    if (ack->resumed)
      spdlog::info("resumed session {:016x} with {} (gateway had dsn {}, we had {}; replaying {} packets)",
                   ack->session_id, ep_str(o_.server), ack->rx_dsn, session_->rx_last(),
                   session_->counters().replayed - replayed0);
    else
      spdlog::info("session {:016x} established with {}{}", ack->session_id, ep_str(o_.server),
                   attempts_before ? fmt::format(" after {} failed attempts", attempts_before) : "");
    tune_connection(session_->socket_fd(), o_, "tunnel");
    session_->token = tunnel::connection_stats(session_->socket_fd()).token;
    watch_ = {};
    watch_.check(session_->socket_fd(), "tunnel");
  }

  void schedule_retry(const std::string& why) {
    if (core_.stopping_) return;
    state_ = "reconnecting";
    ++attempts_;
    // Exponential backoff from 100 ms to --reconnect-max, with +-25% jitter.
    const double base = std::min<double>(100.0 * std::pow(2.0, std::min(attempts_ - 1, 16)),
                                         static_cast<double>(o_.reconnect_max.count()));
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    const auto delay = std::chrono::milliseconds(static_cast<long>(base * jitter(rng_)));
    if (attempts_ <= 5 || attempts_ % 30 == 0)
      spdlog::warn("cannot reach gateway {} ({}); attempt {}, retrying in {} ms", ep_str(o_.server), why, attempts_,
                   delay.count());
    retry_.expires_after(delay);
    retry_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) connect();
    });
  }

  void tick(Clock::time_point now) {
    if (!session_->tick(now)) {
      if (session_->id() != 0 || session_->buffer().packets() > 0) {
        spdlog::warn("session {:016x} not resumed within {} ms: {} buffered packets dropped", session_->id(),
                     o_.session_hold.count(), session_->buffer().packets());
        ++dc_.sessions_expired;
      }
      session_->reset(0);
    }
  }

  void stats() {
    watch_.check(session_->socket_fd(), "tunnel");
    maintain_paths();
  }

  void on_event(const tunnel::netlink::PmEventMsg& ev) {
    if (session_->token == 0 || ev.token != session_->token) return;
    if (ev.type != tunnel::uapi::kEventSubEstablished && ev.type != tunnel::uapi::kEventSubClosed) return;
    log_subflow_event(ev, "tunnel");
    if (ev.type == tunnel::uapi::kEventSubClosed) abort_if_no_subflow(*session_, "tunnel");
    else watch_.check(session_->socket_fd(), "tunnel");
  }

  // A path whose endpoint has had no established subflow for two checks in a
  // row gets its endpoint deleted and re-added, at most every --path-retry.
  void maintain_paths() {
    const int fd = session_->socket_fd();
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
    if (hc_) hc_->close();
    session_->close();
    core_.stop_all();
  }

  std::string render(bool json) {
    Report r(core_.role_, core_.o_.tun, state_, Clock::now() - core_.started_);
    r.tun = core_.port_->counters();
    r.daemon = dc_;
    r.totals.add(*session_);
    r.sessions.push_back(SessionReport::of(*session_, o_.id, ep_str(o_.server), o_.prefixes));
    return json ? r.json() : r.text();
  }

  const ClientOptions& o_;
  Core core_;
  hs::Key key_;
  std::unique_ptr<tunnel::Session> session_;
  std::optional<tunnel::PathSetup> paths_;
  std::optional<tcp::socket> sock_;
  std::shared_ptr<HandshakeConn> hc_;
  asio::steady_timer retry_, connect_timer_;
  std::string state_ = "starting";
  int attempts_ = 0;
  ConnWatch watch_;
  DaemonCounters dc_;
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
