#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/rtnl.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace tunnel {

PathSetup::PathSetup(netlink::MptcpPm& pm, const std::vector<PathSpec>& paths, int family,
                     std::uint32_t subflows, std::uint32_t add_addr_accepted)
    : pm_(pm) {
  try {
    const netlink::PmLimits cur = pm_.get_limits();
    netlink::PmLimits want{std::min(std::max(cur.subflows, subflows), uapi::kPmMaxLimit),
                           std::min(std::max(cur.add_addr_accepted, add_addr_accepted), uapi::kPmMaxLimit)};
    if (want != cur) {
      pm_.set_limits(want);
      saved_limits_ = cur;
      spdlog::info("MPTCP limits: subflows {} -> {}, add_addr_accepted {} -> {}", cur.subflows, want.subflows,
                   cur.add_addr_accepted, want.add_addr_accepted);
    }
    const auto existing = pm_.endpoints();
    for (const PathSpec& p : paths) {
      const int ifidx = rtnl::ifindex(p.ifname);
      const auto addr = rtnl::primary_address(ifidx, family);
      if (!addr) {
        throw std::runtime_error("path " + p.ifname + " has no global " +
                                 (family == AF_INET ? "IPv4" : "IPv6") + " address");
      }
      auto same = std::find_if(existing.begin(), existing.end(),
                               [&](const netlink::Endpoint& e) { return e.addr == *addr && e.port == 0; });
      if (same != existing.end()) {
        spdlog::warn("path {}: MPTCP endpoint {} id {} exists already (flags {}); using it as it is",
                     p.ifname, addr->to_string(), same->id, netlink::endpoint_flags_to_string(same->flags));
        continue;
      }
      netlink::Endpoint ep;
      ep.addr = *addr;
      ep.flags = uapi::kPmAddrFlagSubflow | p.flags;
      ep.ifindex = ifidx;
      ep.id = pm_.add_endpoint(ep);
      added_.push_back(ep);
      names_.push_back(p.ifname);
      spdlog::info("path {}: MPTCP endpoint {} id {} flags {}", p.ifname, addr->to_string(), ep.id,
                   netlink::endpoint_flags_to_string(ep.flags));
    }
  } catch (...) {
    undo();
    throw;
  }
}

PathSetup::~PathSetup() { undo(); }

void PathSetup::rebuild(std::size_t i) {
  netlink::Endpoint& ep = added_.at(i);
  pm_.del_endpoint(ep.id);
  netlink::Endpoint fresh = ep;
  fresh.id = 0;
  ep.id = pm_.add_endpoint(fresh);
}

void PathSetup::undo() noexcept {
  for (const auto& ep : added_) {
    try {
      pm_.del_endpoint(ep.id);
      spdlog::info("removed MPTCP endpoint {} id {}", ep.addr.to_string(), ep.id);
    } catch (const std::exception& e) {
      spdlog::warn("could not remove MPTCP endpoint id {}: {}", ep.id, e.what());
    }
  }
  added_.clear();
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
