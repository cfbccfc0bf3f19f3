#include <tunnel/path_tracker.hpp>

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <algorithm>
#include <stdexcept>

namespace tunnel {
namespace ip = boost::asio::ip;
namespace {

bool usable(const netlink::AddrMsg& m) {
  return m.scope == RT_SCOPE_UNIVERSE && !(m.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED));
}

// Lower is better: not deprecated first, then not temporary/secondary
// (IFA_F_TEMPORARY and IFA_F_SECONDARY are the same bit).
int rank(const PathAddress& a) {
  return ((a.flags & IFA_F_DEPRECATED) ? 2 : 0) + ((a.flags & IFA_F_SECONDARY) ? 1 : 0);
}

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

bool contains(const std::vector<ip::address>& v, const ip::address& a) {
  return std::find(v.begin(), v.end(), a) != v.end();
}

}  // namespace

const char* to_string(PathState s) {
  switch (s) {
    case PathState::waiting: return "waiting";
    case PathState::up: return "up";
    case PathState::carrying: return "carrying";
    case PathState::down: return "down";
  }
  return "?";
}

PathTracker::PathTracker(std::vector<std::string> names, FamilyPolicy policy) : policy_(policy) {
  for (auto& n : names) {
    if (std::any_of(paths_.begin(), paths_.end(), [&](const Path& p) { return p.name == n; }))
      throw std::invalid_argument("path " + n + " given twice");
    Path p;
    p.name = std::move(n);
    paths_.push_back(std::move(p));
  }
}

void PathTracker::on_link(const netlink::LinkMsg& m, std::vector<PathDecision>& out) {
  if (m.ifindex <= 0) return;
  if (m.removed) {
    links_.erase(m.ifindex);
    addrs_.erase(m.ifindex);
  } else {
    Link& l = links_[m.ifindex];
    if (!m.name.empty()) l.name = m.name;
    l.flags = m.flags;
  }
  if (!in_snapshot_) update(out);
}

void PathTracker::on_addr(const netlink::AddrMsg& m, std::vector<PathDecision>& out) {
  if (m.ifindex <= 0) return;
  auto& v = addrs_[m.ifindex];
  auto it = std::find_if(v.begin(), v.end(), [&](const PathAddress& a) { return a.addr == m.addr; });
  if (m.removed || !usable(m)) {
    if (it != v.end()) v.erase(it);
  } else if (it != v.end()) {
    it->prefixlen = m.prefixlen;
    it->flags = m.flags;
  } else {
    v.push_back(PathAddress{m.addr, m.prefixlen, m.flags, ++seq_});
  }
  if (!in_snapshot_) update(out);
}

void PathTracker::begin_snapshot() {
  links_.clear();
  addrs_.clear();
  in_snapshot_ = true;
}

void PathTracker::end_snapshot(std::vector<PathDecision>& out) {
  in_snapshot_ = false;
  update(out);
}

void PathTracker::set_carrying(std::size_t i, bool carrying) {
  Path& p = paths_.at(i);
  if (carrying && p.state == PathState::up) p.state = PathState::carrying;
  if (!carrying && p.state == PathState::carrying) p.state = PathState::up;
}

std::optional<ip::address> PathTracker::endpoint(std::size_t i, int family) const {
  for (const auto& a : paths_.at(i).endpoints) {
    if ((family == AF_INET6) == a.is_v6()) return a;
  }
  return std::nullopt;
}

std::vector<PathAddress> PathTracker::usable_addresses(std::size_t i) const {
  const auto it = addrs_.find(paths_.at(i).ifindex);
  if (paths_[i].ifindex == 0 || it == addrs_.end()) return {};
  return it->second;
}

std::optional<std::size_t> PathTracker::path_of_address(const ip::address& a) const {
  const ip::address u = unmapped(a);
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (contains(paths_[i].endpoints, u)) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> PathTracker::path_of_ifindex(int ifindex) const {
  if (ifindex <= 0) return std::nullopt;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (paths_[i].ifindex == ifindex) return i;
  }
  return std::nullopt;
}

std::optional<PathAddress> PathTracker::pick(const Path& p, int link, bool v6) const {
  const auto it = addrs_.find(link);
  if (it == addrs_.end()) return std::nullopt;
  const PathAddress* best = nullptr;
  const PathAddress* current = nullptr;
  for (const PathAddress& a : it->second) {
    if (a.addr.is_v6() != v6) continue;
    if (!best || rank(a) < rank(*best) || (rank(a) == rank(*best) && a.seen < best->seen)) best = &a;
    if (contains(p.endpoints, a.addr)) current = &a;
  }
  if (current && rank(*current) == rank(*best)) return *current;  // no churn between equals
  if (best) return *best;
  return std::nullopt;
}

void PathTracker::update(std::vector<PathDecision>& out) {
  for (std::size_t i = 0; i < paths_.size(); ++i) update_path(i, out);
}

void PathTracker::update_path(std::size_t i, std::vector<PathDecision>& out) {
  Path& p = paths_[i];
  int link = 0;
  unsigned flags = 0;
  for (const auto& [idx, l] : links_) {
    if (l.name == p.name) {
      link = idx;
      flags = l.flags;
      break;
    }
  }
  const bool carrier = link && (flags & IFF_UP) && (flags & IFF_RUNNING);

  std::vector<ip::address> want;
  if (carrier) {
    const auto v4 = pick(p, link, false);
    const auto v6 = pick(p, link, true);
    switch (policy_) {
      case FamilyPolicy::both:
        if (v4) want.push_back(v4->addr);
        if (v6) want.push_back(v6->addr);
        break;
      case FamilyPolicy::prefer_v4:
        if (v4 || v6) want.push_back(v4 ? v4->addr : v6->addr);
        break;
      case FamilyPolicy::prefer_v6:
        if (v4 || v6) want.push_back(v6 ? v6->addr : v4->addr);
        break;
      case FamilyPolicy::only_v4:
        if (v4) want.push_back(v4->addr);
        break;
      case FamilyPolicy::only_v6:
        if (v6) want.push_back(v6->addr);
        break;
    }
  }

  const bool relinked = p.ifindex != link;
  for (const auto& a : p.endpoints) {
    if (relinked || !contains(want, a))
      out.push_back({PathDecision::Kind::remove_endpoint, i, a, p.ifindex});
  }
  for (const auto& a : want) {
    if (relinked || !contains(p.endpoints, a)) out.push_back({PathDecision::Kind::add_endpoint, i, a, link});
  }
  const bool was_usable = !p.endpoints.empty();
  const bool now_usable = !want.empty();
  if (was_usable && !now_usable) out.push_back({PathDecision::Kind::path_down, i, {}, p.ifindex});
  if (!was_usable && now_usable) out.push_back({PathDecision::Kind::path_up, i, {}, link});

  p.ifindex = link;
  p.endpoints = std::move(want);
  if (!link) p.state = PathState::waiting;
  else if (!carrier) p.state = PathState::down;
  else if (!now_usable) p.state = PathState::waiting;
  else if (p.state != PathState::carrying) p.state = PathState::up;
}

}  // namespace tunnel
