// What a tunneld instance changes in the kernel's MPTCP path manager, and
// undoes on exit: raised limits, and one `subflow` endpoint per WAN path.
#pragma once

#include <tunnel/mptcp_pm.hpp>

#include <string>
#include <vector>

namespace tunnel {

struct PathSpec {
  std::string ifname;
  std::uint32_t flags = 0;  // added to kPmAddrFlagSubflow, e.g. backup
};

class PathSetup {
 public:
  // Raises the PM limits to at least `subflows` / `add_addr_accepted`
  // (capped at 8). For each path, adds an endpoint for the interface's primary
  // address of `family` with flag `subflow` and the device's index. An endpoint
  // that exists already with that address is left alone (and not removed
  // later). Throws with a message naming the path on failure, after undoing
  // what it did.
  PathSetup(netlink::MptcpPm& pm, const std::vector<PathSpec>& paths, int family,
            std::uint32_t subflows, std::uint32_t add_addr_accepted);
  // Removes the endpoints it added and restores the limits it raised.
  ~PathSetup();
  PathSetup(const PathSetup&) = delete;
  PathSetup& operator=(const PathSetup&) = delete;

  const std::vector<netlink::Endpoint>& added() const { return added_; }
  const std::string& path_name(std::size_t i) const { return names_[i]; }

  // Deletes and re-adds added()[i]. The in-kernel PM never re-creates a
  // subflow that closed; a fresh endpoint makes it open one on every existing
  // connection. Throws on netlink failure (the endpoint may then be gone).
  void rebuild(std::size_t i);

 private:
  void undo() noexcept;

  netlink::MptcpPm& pm_;
  std::optional<netlink::PmLimits> saved_limits_;
  std::vector<netlink::Endpoint> added_;
  std::vector<std::string> names_;  // path (interface) of each added_ entry
};

}  // namespace tunnel
