#include <tunnel/gateway.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/rtnl.hpp>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>

namespace tunnel {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Gateway::Gateway(asio::io_context& io, GatewayConfig cfg)
    : Node(io, cfg.node), gcfg_(std::move(cfg)), table_(gcfg_.max_cpes) {}

Gateway::~Gateway() = default;

void Gateway::on_start() {
  if (gcfg_.listen.empty()) throw std::runtime_error("no address to listen on");
  const bool dual = gcfg_.listen.size() > 1;
  const int family0 = gcfg_.listen[0].address().is_v4() && !dual ? AF_INET : AF_INET6;
  // Joins arrive on the listening sockets; accept as many subflows as the PM allows.
  if (pm_) paths_.emplace(*pm_, std::vector<PathSpec>{}, family0, uapi::kPmMaxLimit, uapi::kPmMaxLimit);
  for (const auto& l : gcfg_.listen) {
    const tcp::endpoint bind_ep = dual ? to_v6_endpoint(l) : l;
    const int fd = dual && cfg_.mptcp ? open_dual_stack_mptcp_socket() : open_socket(bind_ep.address().is_v4() ? AF_INET : AF_INET6);
    auto acc = std::make_unique<tcp::acceptor>(io_);
    acc->assign(bind_ep.protocol(), fd);
    // Accepted connections inherit it; joins take the connection's.
    if (auto ec = tune_socket(fd, {false, 0, cfg_.tuning.congestion}); ec && !cfg_.tuning.congestion.empty())
      throw std::runtime_error("--congestion " + cfg_.tuning.congestion + ": " + ec.message() +
                               " (see net.ipv4.tcp_available_congestion_control)");
    acc->set_option(tcp::acceptor::reuse_address(true));
    acc->bind(bind_ep);
    acc->listen(256);
    spdlog::info("listening on {} ({}), gateway id '{}'", to_string(unmapped(acc->local_endpoint())),
                 cfg_.mptcp ? "MPTCP" : "TCP", gcfg_.id);
    acceptors_.push_back(std::move(acc));
    accept_next(*acceptors_.back());
  }
  if (!gcfg_.shape_downlink.empty()) {
    std::vector<int> ifs;
    for (const auto& name : gcfg_.shape_downlink) ifs.push_back(rtnl::ifindex(name));
    shaper_.emplace(std::move(ifs));
    control_->set_builtin([this](Session& s, std::string_view topic, std::span<const std::uint8_t> body) {
      return on_builtin(s, topic, body);
    });
    spdlog::info("downlink shaping on {}: each CPE path at {:g}% of the rate its CPE announces",
                 fmt::join(gcfg_.shape_downlink, ", "), shaper::kShapePermille / 10.0);
  }
  if (pm_ && dual) {
    for (const auto& l : gcfg_.listen) {
      netlink::Endpoint e;
      e.addr = l.address();
      e.flags = uapi::kPmAddrFlagSignal;
      try {
        signal_ids_.push_back(pm_->add_endpoint(e));
        spdlog::info("announcing {} to CPEs (MPTCP signal endpoint id {})", e.addr.to_string(), signal_ids_.back());
      } catch (const std::system_error& ex) {
        spdlog::warn("cannot announce {}: {} (a CPE path of its family gets no subflow)", e.addr.to_string(),
                     ex.what());
      }
    }
  }
}

void Gateway::on_stop() {
  boost::system::error_code ec;
  for (auto& a : acceptors_) a->close(ec);
  for (auto& [hc, src] : pending_) hc->close();
  pending_.clear();
  per_source_.clear();
  for (auto& [sid, s] : sessions_) s->close();
  for (auto id : signal_ids_) {
    try {
      pm_->del_endpoint(id);
    } catch (const std::system_error&) {
    }
  }
  signal_ids_.clear();
  paths_.reset();
  shaped_.clear();
  shaper_.reset();  // removes the root qdisc and every class
}

tcp::endpoint Gateway::local_endpoint() const {
  boost::system::error_code ec;
  return acceptors_.empty() ? tcp::endpoint() : unmapped(acceptors_[0]->local_endpoint(ec));
}

void Gateway::for_each_session(const std::function<void(const Session&)>& f) const {
  for (const auto& [sid, s] : sessions_) f(*s);
}

const Session* Gateway::find(std::string_view cpe_id) const {
  const auto sid = table_.session_of(cpe_id);
  auto it = sid ? sessions_.find(sid) : sessions_.end();
  return it == sessions_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------- data

void Gateway::on_packets(TunPort::Packets pkts, Clock::time_point now) {
  for (const auto pkt : pkts) {
    PacketAddrs a;
    Session* s = packet_addrs(pkt, a) ? table_.route(a.family, a.dst) : nullptr;
    if (!s) {
      ++dc_.drop_no_route;
      continue;
    }
    send(*s, pkt, now);
  }
}

void Gateway::on_tick(Clock::time_point now) {
  std::vector<std::uint64_t> expired;
  for (auto& [sid, s] : sessions_)
    if (!s->tick(now)) expired.push_back(sid);
  for (auto sid : expired)
    destroy(sid, fmt::format("not resumed within {} ms", cfg_.link.hold.count()), dc_.sessions_expired);
  account_memory();
}

void Gateway::link_failed(Session& s, Link& l, Fault why, std::string_view detail) {
  if (why == Fault::peer_closed) {
    spdlog::info("CPE '{}': session {:016x} closed by the CPE", s.peer_id, s.id());
    destroy(s.id(), {}, dc_.sessions_closed);
    return;
  }
  // Someone on a path can cause this (a forged frame ends the connection):
  // rate-limited like the handshake refusals.
  std::uint64_t skipped = 0;
  if (refuse_log_.allow(Clock::now(), skipped))
    spdlog::warn("CPE '{}': link {} connection lost ({}{}{}); holding session {:016x} for {} ms{}", s.peer_id, l.index(),
                 to_string(why), detail.empty() ? "" : ": ", detail, s.id(), cfg_.link.hold.count(),
                 skipped ? fmt::format(" ({} similar lines suppressed)", skipped) : "");
  dc_.log_suppressed += skipped;
}

void Gateway::destroy(std::uint64_t sid, std::string_view why, std::uint64_t& counter) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  if (!why.empty())
    spdlog::warn("CPE '{}': session {:016x} destroyed: {}; {} buffered packets dropped", s.peer_id, sid, why,
                 s.buffered_packets());
  unshape(sid);
  s.close();
  ++counter;
  retire(s);
  table_.erase(sid);
  sessions_.erase(it);  // its links are orphaned; their pending handlers hold them until they run
}

std::size_t Gateway::replace_keys(std::shared_ptr<const hs::KeyTable> keys) {
  gcfg_.keys = std::move(keys);
  if (!gcfg_.keys) return 0;
  std::vector<std::uint64_t> gone;
  for (const auto& [sid, s] : sessions_)
    if (!gcfg_.keys->find(s->peer_id) ||
        gcfg_.keys->admit(s->peer_id, s->prefixes, gcfg_.allow_unbound_prefixes) != keys::Admission::allowed ||
        gcfg_.keys->admit_groups(s->peer_id, s->groups) != keys::Admission::allowed)
      gone.push_back(sid);
  for (auto sid : gone)
    destroy(sid, "the key file no longer has its key or allows its prefixes or groups", dc_.sessions_closed);
  return gone.size();
}

}  // namespace tunnel
