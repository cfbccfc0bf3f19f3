#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/node.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace tunnel {
namespace asio = boost::asio;

namespace {
std::string ep(const boost::asio::ip::tcp::endpoint& e) { return tunnel::to_string(e); }
}  // namespace

Node::Node(asio::io_context& io, NodeConfig cfg) : io_(io), cfg_(std::move(cfg)), tick_(io), stats_tick_(io) {}

Node::~Node() = default;

void Node::start() {
  int fd = cfg_.tun_fd;
  if (fd < 0) {
    tun_.emplace(cfg_.tun);
    spdlog::info("TUN {} (ifindex {}) mtu {}{}", tun_->name(), tun_->ifindex(), cfg_.tun.mtu,
                 tun_->attached_existing() ? ", attached to existing device" : "");
    for (const auto& p : cfg_.tun.addresses) spdlog::info("TUN {} address {}", tun_->name(), p.to_string());
    fd = tun_->fd();
  }
  port_.emplace(io_, fd, cfg_.port, [this](TunPort::Packets pkts) {
    on_packets(pkts, Clock::now());
    for (auto* s : dirty_) s->flush();
    dirty_.clear();
  });
  port_->on_failure([this](std::string why) {
    spdlog::error("TUN gone ({}): stopping", why);
    stop();
    if (on_fatal) on_fatal(why);
  });
  if (cfg_.path_manager) pm_.emplace();
  if (cfg_.realtime) {
    classify::ClassifierConfig cc;
    cc.rules = cfg_.class_rules;
    classifier_.emplace(cc);
  }
  control_.emplace(io_, cfg_.control, [this](const Session& s) { return peer_name(s); });
  on_start();
  tick_period_ = std::min(std::chrono::milliseconds(100), cfg_.link.heartbeat / 4);
  schedule_tick();
  schedule_stats();
  port_->start();
  if (pm_) {
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
}

void Node::stop() {
  if (stopping_) return;
  stopping_ = true;
  if (control_) control_->stop(Clock::now());
  on_stop();
  dirty_.clear();
  tick_.cancel();
  stats_tick_.cancel();
  boost::system::error_code ec;
  if (event_sd_) event_sd_->cancel(ec);
  if (port_) port_->stop();
}

int Node::open_socket(int family) const { return cfg_.mptcp ? open_mptcp_socket(family) : open_tcp_socket(family); }

int Node::open_tcp_socket(int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket(TCP)");
  return fd;
}

void Node::attached(Link& l, const std::string& who) {
  const int fd = l.fd();
  if (fd < 0) return;
  // A realtime link keeps almost nothing unsent in the kernel: what would wait there is late.
  const SocketTuning t = l.core().realtime() ? SocketTuning{true, 4096, cfg_.tuning.congestion, 0} : cfg_.tuning;
  if (auto ec = tune_socket(fd, t)) spdlog::warn("{}: socket options: {}", who, ec.message());
  const int got = socket_rcvbuf(fd);
  if (t.rcvbuf && got >= 0 && static_cast<std::size_t>(got) < 2 * t.rcvbuf)
    spdlog::warn("{}: receive buffer {} bytes, asked for {} (no CAP_NET_ADMIN, and net.core.rmem_max is lower)", who,
                 got / 2, cfg_.tuning.rcvbuf);
  if (control_ && l.session()) control_->attached(*l.session(), l, Clock::now());
  if (!cfg_.mptcp || l.core().realtime()) return;  // a realtime link is plain TCP on one path, by design
  watch_[&l] = Watch{-1, false, who};
  l.token = connection_stats(fd).token;
  if (l.token) by_token_[l.token] = l.weak_from_this();
  check_link(l);
}

FrameVerdict Node::frame_received(Session& s, Link& l, const wire::Frame& f) {
  if (!control_) return {Fault::unexpected_frame, {}};
  return control_->on_frame(s, l, f, Clock::now());
}

void Node::retire(Session& s) {
  if (control_) control_->session_ended(s, Clock::now());
  std::erase(dirty_, &s);
  retired_ += s.counters();
  const auto r = s.replay_counters();
  retired_r_.drop_full += r.drop_full;
  retired_r_.drop_age += r.drop_age;
  retired_r_.drop_unsent += r.drop_unsent;
  retired_r_.drop_memory += r.drop_memory;
  retired_r_.drop_cleared += r.drop_cleared + s.buffered_packets();
  retired_r_.acked += r.acked;
  for (const auto& l : s.links())
    if (l) watch_.erase(l.get());
}

// Logs fallback to plain TCP and changes in the number of subflows.
void Node::check_link(Link& l) {
  auto it = watch_.find(&l);
  const int fd = l.fd();
  if (it == watch_.end() || fd < 0 || !cfg_.mptcp) return;
  Watch& w = it->second;
  const auto cs = connection_stats(fd);
  if (!cs.mptcp) {
    if (!w.fallback_warned)
      spdlog::warn("{}: connection fell back to plain TCP: a single path, no failover (is MPTCP blocked on the path?)",
                   w.who);
    w.fallback_warned = true;
    return;
  }
  if (static_cast<int>(cs.subflows) == w.subflows) return;
  std::string list;
  for (const auto& sf : cs.subflow) {
    if (sf.state != 1) continue;
    list += fmt::format("{}{} -> {}", list.empty() ? "" : ", ", ep(sf.local), ep(sf.remote));
  }
  spdlog::info("{}: MPTCP subflows established: {} ({})", w.who, cs.subflows, list);
  w.subflows = static_cast<int>(cs.subflows);
}

void Node::schedule_tick() {
  tick_.expires_after(tick_period_);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const auto now = Clock::now();
    on_tick(now);
    if (control_) control_->tick(now);
    schedule_tick();
  });
}

void Node::schedule_stats() {
  stats_tick_.expires_after(cfg_.stats_interval);
  stats_tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    for (auto it = watch_.begin(); it != watch_.end(); ++it) check_link(*const_cast<Link*>(it->first));
    std::erase_if(by_token_, [](const auto& kv) {
      auto l = kv.second.lock();
      return !l || l->token != kv.first;
    });
    on_stats();
    schedule_stats();
  });
}

void Node::wait_events() {
  event_sd_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    for (const auto& ev : events_->read()) on_event(ev);
    wait_events();
  });
}

// Subflow events of our own connections: logged; a connection left with no
// established subflow cannot carry anything though the kernel keeps its
// socket open, so it is ended now rather than after the dead interval.
void Node::on_event(const netlink::PmEventMsg& ev) {
  if (ev.type != uapi::kEventSubEstablished && ev.type != uapi::kEventSubClosed) return;
  auto it = by_token_.find(ev.token);
  if (it == by_token_.end()) return;
  auto l = it->second.lock();
  if (!l || l->token != ev.token) return;
  const auto w = watch_.find(l.get());
  const std::string who = w == watch_.end() ? "tunnel" : w->second.who;
  const std::string saddr = ev.saddr ? ev.saddr->to_string() : "?";
  const std::string daddr = ev.daddr ? ev.daddr->to_string() : "?";
  if (ev.type == uapi::kEventSubEstablished) {
    spdlog::info("{}: subflow up: {}:{} -> {}:{} (ifindex {})", who, saddr, ev.sport, daddr, ev.dport, ev.ifindex);
    check_link(*l);
    on_subflow_event(*l);
    return;
  }
  spdlog::warn("{}: subflow closed: {}:{} -> {}:{} (ifindex {}, error {})", who, saddr, ev.sport, daddr, ev.dport,
               ev.ifindex, ev.error);
  const int fd = l->fd();
  if (fd < 0) return;
  const auto cs = connection_stats(fd);
  if (cs.mptcp && cs.subflows == 0) {
    spdlog::warn("{}: no subflow left", who);
    l->abort(Fault::no_subflow);
    return;
  }
  on_subflow_event(*l);
}

}  // namespace tunnel
