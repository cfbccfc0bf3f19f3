#include <tunnel/client_paths.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/shaper.hpp>

#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>

namespace tunnel {
namespace asio = boost::asio;

ClientPaths::ClientPaths(asio::io_context& io, netlink::MptcpPm& pm, std::vector<PathSpec> specs, FamilyPolicy policy,
                         std::chrono::milliseconds retry, OnChange on_change)
    : io_(io), specs_(std::move(specs)), retry_(retry), on_change_(std::move(on_change)), pm_(pm) {
  std::vector<std::string> names;
  for (const auto& s : specs_) names.push_back(s.ifname);
  mon_.emplace(std::move(names), policy);
  missing_.assign(specs_.size(), 0);
  last_rebuild_.assign(specs_.size(), {});
  shaped_.assign(specs_.size(), 0);
  stranded_.assign(specs_.size(), 0);
  stranded_armed_.assign(specs_.size(), false);
  for (std::size_t i = 0; i < specs_.size(); ++i) stranded_timer_.push_back(std::make_unique<asio::steady_timer>(io_));
}

ClientPaths::~ClientPaths() { stop(); }

void ClientPaths::start() {
  // Room for a subflow per path and family, and for the gateway's announced addresses.
  const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(2 * specs_.size(), uapi::kPmMaxLimit));
  setup_.emplace(pm_, n, uapi::kPmMaxLimit);
  std::vector<PathDecision> ds;
  if (mon_->start(ds) == MonitorResult::failed)
    throw std::runtime_error("rtnetlink: cannot read links and addresses (errno " + std::to_string(mon_->last_errno()) +
                             ")");
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (state(i) == PathState::waiting && mon_->tracker().ifindex(i) == 0)
      spdlog::info("path {}: no such interface yet; waiting for it", name(i));
    else if (state(i) == PathState::waiting)
      spdlog::info("path {}: no usable address yet; waiting for one", name(i));
  apply(ds);
  sd_.emplace(io_, ::dup(mon_->fd()));
  wait();
}

void ClientPaths::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  if (sd_) sd_->cancel(ec);
  sd_.reset();
  for (auto& t : stranded_timer_) t->cancel();
  setup_.reset();  // removes our endpoints, restores the limits
  for (std::size_t i = 0; i < shaped_.size(); ++i)
    if (shaped_[i] && shaper::remove(shaped_[i])) spdlog::info("path {}: egress shaping removed", name(i));
  shaped_.assign(shaped_.size(), 0);
}

void ClientPaths::shape(std::size_t i, int ifindex) {
  const auto& spec = specs_[i];
  if (!spec.up_bps || ifindex == 0 || shaped_[i] == ifindex) return;
  const std::uint64_t rate = spec.up_bps / 1000 * shaper::kShapePermille;
  try {
    shaper::install(ifindex, rate);
    shaped_[i] = ifindex;
    spdlog::info("path {}: egress shaped to {} kbit/s, realtime first", spec.ifname, rate / 1000);
  } catch (const std::exception& e) {
    spdlog::warn("path {}: cannot shape egress ({}); realtime may wait behind bulk in the line's buffer", spec.ifname,
                 e.what());
  }
}

void ClientPaths::wait() {
  sd_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    std::vector<PathDecision> ds;
    auto r = mon_->on_readable(ds);
    if (r == MonitorResult::failed) {
      spdlog::warn("rtnetlink: {} (errno {}); reading links and addresses again", to_string(r), mon_->last_errno());
      r = mon_->start(ds);
    } else if (r == MonitorResult::resynced) {
      spdlog::warn("rtnetlink: events were lost; state read again");
    }
    apply(ds);
    wait();
  });
}

void ClientPaths::apply(const std::vector<PathDecision>& ds) {
  for (const auto& d : ds) {
    const auto& spec = specs_.at(d.path);
    switch (d.kind) {
      case PathDecision::Kind::add_endpoint:
      case PathDecision::Kind::remove_endpoint: {
        const auto r = d.kind == PathDecision::Kind::add_endpoint
                           ? setup_->add(spec.ifname, d.addr, d.ifindex, flags_for(d.path, d.addr))
                           : setup_->apply(d, spec);
        const bool add = d.kind == PathDecision::Kind::add_endpoint;
        if (r == EndpointResult::failed)
          spdlog::warn("path {}: {} endpoint {} failed (errno {}){}", spec.ifname, add ? "adding" : "removing",
                       d.addr.to_string(), setup_->last_errno(), add ? "; retrying" : "");
        else
          spdlog::info("path {}: endpoint {} {}", spec.ifname, d.addr.to_string(), to_string(r));
        missing_[d.path] = 0;
        if (add && r != EndpointResult::failed) {
          stranded_[d.path] = 0;
          arm_stranded(d.path);
        }
        break;
      }
      case PathDecision::Kind::path_up:
        spdlog::info("path {}: up (ifindex {})", spec.ifname, d.ifindex);
        shape(d.path, d.ifindex);
        if (on_change_) on_change_(d.path, true);
        break;
      case PathDecision::Kind::path_down:
        spdlog::warn("path {}: down", spec.ifname);
        if (on_change_) on_change_(d.path, false);
        break;
    }
  }
}

std::uint32_t ClientPaths::flags_for(std::size_t path, const asio::ip::address& a) const {
  const int fam = a.is_v4() ? AF_INET : AF_INET6;
  const auto fullmesh = static_cast<std::uint32_t>(uapi::kPmAddrFlagFullmesh);
  return fam == primary_ ? specs_[path].flags & ~fullmesh : specs_[path].flags;
}

void ClientPaths::set_primary_family(int family) {
  if (family == primary_) return;
  std::vector<std::uint32_t> before;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    for (const auto& a : addresses(i)) before.push_back(flags_for(i, a));
  primary_ = family;
  if (!setup_) return;
  std::size_t k = 0;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    for (const auto& a : addresses(i)) {
      if (before[k++] == flags_for(i, a)) continue;
      setup_->remove(name(i), a);
      const auto r = setup_->add(name(i), a, mon_->tracker().ifindex(i), flags_for(i, a));
      spdlog::info("path {}: endpoint {} re-added with flags {:#x} ({})", name(i), a.to_string(),
                   static_cast<std::uint32_t>(uapi::kPmAddrFlagSubflow) | flags_for(i, a), to_string(r));
    }
}

bool ClientPaths::other_family_only(std::size_t path) const {
  const auto& eps = addresses(path);
  if (primary_ == 0 || eps.empty()) return false;
  return std::none_of(eps.begin(), eps.end(), [&](const asio::ip::address& a) {
    return (a.is_v4() ? AF_INET : AF_INET6) == primary_;
  });
}

void ClientPaths::arm_stranded(std::size_t path) {
  if (!on_stranded_ || !other_family_only(path)) return;
  auto& t = *stranded_timer_[path];
  stranded_armed_[path] = true;
  t.expires_after(retry_ * (1 << std::min(stranded_[path], 5)));
  t.async_wait([this, path](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled or re-armed: whoever did it set stranded_armed_
    stranded_armed_[path] = false;
    if (stopped_ || state(path) != PathState::up || !other_family_only(path)) return;
    ++stranded_[path];
    on_stranded_(path);
    arm_stranded(path);
  });
}

std::optional<asio::ip::address> ClientPaths::usable_source(int family) const {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto st = state(i);
    if (st != PathState::up && st != PathState::carrying) continue;
    if (auto a = source(i, family)) return a;
  }
  return std::nullopt;
}

void ClientPaths::update(const ConnectionStats& cs, Clock::time_point now, bool periodic) {
  if (!setup_ || !cs.mptcp) return;
  auto& tr = mon_->tracker();
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto& eps = tr.endpoints(i);
    const bool carrying = std::any_of(cs.subflow.begin(), cs.subflow.end(), [&](const SubflowStats& s) {
      const auto a = unmapped(s.local).address();
      return s.state == 1 && std::find(eps.begin(), eps.end(), a) != eps.end();
    });
    tr.set_carrying(i, carrying);
    if (carrying && (stranded_[i] > 0 || stranded_armed_[i])) {
      stranded_timer_[i]->cancel();
      stranded_[i] = 0;
      stranded_armed_[i] = false;
    }
    if (carrying || eps.empty() || tr.state(i) == PathState::down) {
      if (carrying && missing_[i] > 2) spdlog::info("path {}: subflow is back", name(i));
      missing_[i] = 0;
      continue;
    }
    // A path of the other family that lost its subflow (or came up before
    // the first connection): a rebuild cannot help it, a re-dial can.
    if (other_family_only(i)) {
      if (!stranded_armed_[i]) arm_stranded(i);
      continue;
    }
    if (!periodic || ++missing_[i] < 2 || now - last_rebuild_[i] < retry_) continue;
    last_rebuild_[i] = now;
    for (const auto& a : eps) {
      const auto r = setup_->rebuild(name(i), a);
      if (missing_[i] <= 3 || missing_[i] % 30 == 0)
        spdlog::info("path {}: no subflow, endpoint {} rebuilt to open one ({})", name(i), a.to_string(), to_string(r));
    }
  }
  setup_->retry();
}

}  // namespace tunnel
