#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/rtnl.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace tunnel {
namespace ip = boost::asio::ip;
namespace {

const netlink::Endpoint* by_addr(const std::vector<netlink::Endpoint>& t, const ip::address& a) {
  for (const auto& e : t) {
    if (e.addr == a && e.port == 0) return &e;
  }
  return nullptr;
}

}  // namespace

const char* to_string(EndpointResult r) {
  switch (r) {
    case EndpointResult::added: return "added";
    case EndpointResult::unchanged: return "unchanged";
    case EndpointResult::foreign: return "foreign";
    case EndpointResult::removed: return "removed";
    case EndpointResult::lost: return "lost";
    case EndpointResult::failed: return "failed";
  }
  return "?";
}

PathSetup::PathSetup(netlink::PmBackend& pm, std::uint32_t subflows, std::uint32_t add_addr_accepted) : pm_(pm) {
  const netlink::PmLimits cur = pm_.get_limits();
  const netlink::PmLimits want{std::min(std::max(cur.subflows, subflows), uapi::kPmMaxLimit),
                               std::min(std::max(cur.add_addr_accepted, add_addr_accepted), uapi::kPmMaxLimit)};
  if (want != cur) {
    pm_.set_limits(want);
    saved_limits_ = cur;
    spdlog::info("MPTCP limits: subflows {} -> {}, add_addr_accepted {} -> {}", cur.subflows, want.subflows,
                 cur.add_addr_accepted, want.add_addr_accepted);
  }
}

PathSetup::PathSetup(netlink::PmBackend& pm, const std::vector<PathSpec>& paths, int family,
                     std::uint32_t subflows, std::uint32_t add_addr_accepted)
    : PathSetup(pm, subflows, add_addr_accepted) {
  try {
    for (const PathSpec& p : paths) {
      const int ifidx = rtnl::ifindex(p.ifname);
      const auto addr = rtnl::primary_address(ifidx, family);
      if (!addr) {
        throw std::runtime_error("path " + p.ifname + " has no global " + (family == AF_INET ? "IPv4" : "IPv6") +
                                 " address");
      }
      const EndpointResult r = add(p.ifname, *addr, ifidx, p.flags);
      if (r == EndpointResult::failed) {
        throw std::system_error(errno_, std::generic_category(),
                                "path " + p.ifname + ": add MPTCP endpoint " + addr->to_string());
      }
    }
  } catch (...) {
    undo();
    throw;
  }
}

PathSetup::~PathSetup() { undo(); }

std::optional<std::size_t> PathSetup::find(const std::string& path, const ip::address& a) const {
  for (std::size_t i = 0; i < eps_.size(); ++i) {
    if (names_[i] == path && eps_[i].addr == a) return i;
  }
  return std::nullopt;
}

EndpointResult PathSetup::add_at(std::size_t i) {
  netlink::Endpoint ep = eps_[i];
  ep.id = 0;
  try {
    // The kernel creates `implicit` endpoints for addresses a subflow used
    // without one; adding an endpoint for such an address replaces it.
    const auto table = pm_.endpoints();  // by_addr() points into it
    if (const auto* e = by_addr(table, ep.addr); e && !(e->flags & uapi::kPmAddrFlagImplicit)) {
      spdlog::warn("path {}: MPTCP endpoint {} id {} exists already (flags {}); using it as it is", names_[i],
                   e->addr.to_string(), e->id, netlink::endpoint_flags_to_string(e->flags));
      return EndpointResult::foreign;
    }
    eps_[i].id = pm_.add_endpoint(ep);
  } catch (const std::system_error& e) {
    errno_ = e.code().value();
    if (errno_ == EEXIST) return EndpointResult::foreign;
    spdlog::warn("path {}: could not add MPTCP endpoint {}: {}", names_[i], ep.addr.to_string(), e.what());
    return EndpointResult::failed;
  }
  spdlog::info("path {}: MPTCP endpoint {} id {} flags {}", names_[i], ep.addr.to_string(), eps_[i].id,
               netlink::endpoint_flags_to_string(ep.flags));
  return EndpointResult::added;
}

EndpointResult PathSetup::add(const std::string& path, const ip::address& addr, int ifindex, std::uint32_t flags) {
  netlink::Endpoint ep;
  ep.addr = addr;
  ep.ifindex = ifindex;
  ep.flags = uapi::kPmAddrFlagSubflow | flags;
  if (const auto i = find(path, addr)) {
    if (eps_[*i].id != 0 && eps_[*i].ifindex == ifindex && eps_[*i].flags == ep.flags)
      return EndpointResult::unchanged;
    if (eps_[*i].id != 0) {  // same address on another device or with other flags: replace it
      if (const auto r = remove(path, addr); r == EndpointResult::failed) return r;
      return add(path, addr, ifindex, flags);
    }
    eps_[*i] = ep;
    return add_at(*i);
  }
  eps_.push_back(ep);
  names_.push_back(path);
  const EndpointResult r = add_at(eps_.size() - 1);
  if (r == EndpointResult::foreign) {
    eps_.pop_back();
    names_.pop_back();
  }
  return r;
}

EndpointResult PathSetup::delete_if_ours(std::size_t i, const std::vector<netlink::Endpoint>& table) {
  netlink::Endpoint& ep = eps_[i];
  const auto it = std::find_if(table.begin(), table.end(), [&](const netlink::Endpoint& e) { return e.id == ep.id; });
  if (it == table.end() || it->addr != ep.addr) {
    spdlog::warn("path {}: MPTCP endpoint id {} is no longer {}; forgotten, not deleted", names_[i], ep.id,
                 ep.addr.to_string());
    ep.id = 0;
    return EndpointResult::lost;
  }
  try {
    pm_.del_endpoint(ep.id);
  } catch (const std::system_error& e) {
    errno_ = e.code().value();
    if (errno_ == EINVAL || errno_ == ENOENT) {  // removed between the read and the delete
      ep.id = 0;
      return EndpointResult::lost;
    }
    spdlog::warn("path {}: could not remove MPTCP endpoint id {}: {}", names_[i], ep.id, e.what());
    return EndpointResult::failed;
  }
  spdlog::info("path {}: removed MPTCP endpoint {} id {}", names_[i], ep.addr.to_string(), ep.id);
  ep.id = 0;
  return EndpointResult::removed;
}

EndpointResult PathSetup::remove(const std::string& path, const ip::address& addr) {
  const auto i = find(path, addr);
  if (!i) return EndpointResult::unchanged;
  EndpointResult r = EndpointResult::removed;
  if (eps_[*i].id != 0) {
    try {
      r = delete_if_ours(*i, pm_.endpoints());
    } catch (const std::system_error& e) {
      errno_ = e.code().value();
      return EndpointResult::failed;
    }
    if (r == EndpointResult::failed) return r;
  }
  eps_.erase(eps_.begin() + static_cast<std::ptrdiff_t>(*i));
  names_.erase(names_.begin() + static_cast<std::ptrdiff_t>(*i));
  return r;
}

EndpointResult PathSetup::apply(const PathDecision& d, const PathSpec& spec) {
  switch (d.kind) {
    case PathDecision::Kind::add_endpoint: return add(spec.ifname, d.addr, d.ifindex, spec.flags);
    case PathDecision::Kind::remove_endpoint: return remove(spec.ifname, d.addr);
    case PathDecision::Kind::path_up:
    case PathDecision::Kind::path_down: return EndpointResult::unchanged;
  }
  return EndpointResult::unchanged;
}

EndpointResult PathSetup::rebuild(const std::string& path, const ip::address& addr) {
  const auto i = find(path, addr);
  if (!i) return EndpointResult::unchanged;
  if (eps_[*i].id != 0) {
    EndpointResult r;
    try {
      r = delete_if_ours(*i, pm_.endpoints());
    } catch (const std::system_error& e) {
      errno_ = e.code().value();
      return EndpointResult::failed;
    }
    if (r == EndpointResult::failed) return r;
  }
  return add_at(*i);
}

std::size_t PathSetup::retry() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < eps_.size(); ++i) {
    if (eps_[i].id == 0 && add_at(i) == EndpointResult::added) ++n;
  }
  return n;
}

void PathSetup::rebuild(std::size_t i) {
  const EndpointResult r = rebuild(names_.at(i), eps_.at(i).addr);
  if (r != EndpointResult::added) {
    throw std::runtime_error(std::string("rebuild endpoint ") + eps_[i].addr.to_string() + ": " + to_string(r) +
                             (r == EndpointResult::failed ? std::string(": ") + std::strerror(errno_) : ""));
  }
}

void PathSetup::undo() noexcept {
  try {
    if (std::any_of(eps_.begin(), eps_.end(), [](const netlink::Endpoint& e) { return e.id != 0; })) {
      const auto table = pm_.endpoints();
      for (std::size_t i = 0; i < eps_.size(); ++i) {
        if (eps_[i].id != 0) delete_if_ours(i, table);
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("could not read the MPTCP endpoints to remove ours: {}", e.what());
  }
  eps_.clear();
  names_.clear();
  if (saved_limits_) {
    try {
      pm_.set_limits(*saved_limits_);
    } catch (const std::exception& e) {
      spdlog::warn("could not restore MPTCP limits: {}", e.what());
    }
    saved_limits_.reset();
  }
}

}  // namespace tunnel
