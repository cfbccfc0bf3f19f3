// What a tunneld instance changes in the kernel's MPTCP path manager, and
// undoes on exit: raised limits, and `subflow` endpoints keyed by (path,
// address), added and removed as paths come and go (PathTracker decisions).
//
// Ownership rule: an endpoint id is ours only while the kernel's table shows
// that id with our address. Before any delete the table is read again; an id
// that is gone or now names another address is forgotten, never deleted (the
// kernel may have given it to someone else). An endpoint that existed before
// we added one for its address is someone else's: used, never removed.
#pragma once

#include <tunnel/mptcp_pm.hpp>
#include <tunnel/path_tracker.hpp>

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tunnel {

struct PathSpec {
  std::string ifname;
  std::uint32_t flags = 0;     // added to kPmAddrFlagSubflow, e.g. backup, fullmesh
  std::uint64_t up_bps = 0;    // the line's uplink rate; nonzero: egress shaped below it (shaper.hpp)
  std::uint64_t down_bps = 0;  // the line's downlink rate; 0: unknown
};

// What an endpoint operation did. Closed set.
enum class EndpointResult : std::uint8_t {
  added,      // add: our endpoint for the address exists now
  unchanged,  // add: ours existed already; remove: we had none for (path, address)
  foreign,    // add: an endpoint with that address exists that is not ours; left as it is
  removed,    // remove: our endpoint is deleted
  lost,       // remove/rebuild: our id was gone or named another address; forgotten, not deleted
  failed,     // the kernel refused (errno: last_errno()). add/rebuild: the (path, address) is
              // kept as wanted with no id and retry() tries again; remove: kept, deleted at exit
};
const char* to_string(EndpointResult r);

class PathSetup {
 public:
  // Raises the PM limits to at least `subflows` / `add_addr_accepted`
  // (capped at 8); adds no endpoint. Throws std::system_error when the limits
  // cannot be read or set.
  PathSetup(netlink::PmBackend& pm, std::uint32_t subflows, std::uint32_t add_addr_accepted);

  // The start-up form: limits as above, then for each path an endpoint for
  // the interface's primary address of `family`, with flag `subflow` and the
  // device's index. Throws with a message naming the path when an interface
  // or its address is missing or the kernel refuses, after undoing what it did.
  PathSetup(netlink::PmBackend& pm, const std::vector<PathSpec>& paths, int family, std::uint32_t subflows,
            std::uint32_t add_addr_accepted);

  // Removes the endpoints that are still ours and restores the limits it raised.
  ~PathSetup();
  PathSetup(const PathSetup&) = delete;
  PathSetup& operator=(const PathSetup&) = delete;

  // Adds a `subflow | flags` endpoint for `addr` on `ifindex`, for `path`.
  EndpointResult add(const std::string& path, const boost::asio::ip::address& addr, int ifindex,
                     std::uint32_t flags);
  // Removes our endpoint for (path, addr).
  EndpointResult remove(const std::string& path, const boost::asio::ip::address& addr);
  // Carries out an add_endpoint or remove_endpoint decision for the path
  // `spec` names; path_up and path_down change nothing (unchanged).
  EndpointResult apply(const PathDecision& d, const PathSpec& spec);
  // Deletes and re-adds our endpoint for (path, addr): the in-kernel PM never
  // re-creates a subflow that closed, a fresh endpoint opens one on every
  // connection. If the re-add fails, the old id is forgotten (failed).
  EndpointResult rebuild(const std::string& path, const boost::asio::ip::address& addr);
  // Adds again every wanted endpoint that has no id (a failed add or
  // rebuild). Returns how many are ours again.
  std::size_t retry();

  // Every wanted endpoint, in the order first added; id 0 while it is not in
  // the kernel (see retry()). Indices are stable until remove().
  const std::vector<netlink::Endpoint>& added() const { return eps_; }
  const std::string& path_name(std::size_t i) const { return names_.at(i); }
  // Like rebuild(path, addr) for added()[i]; throws std::runtime_error on failure.
  void rebuild(std::size_t i);

  int last_errno() const { return errno_; }

 private:
  std::optional<std::size_t> find(const std::string& path, const boost::asio::ip::address& a) const;
  EndpointResult add_at(std::size_t i);
  EndpointResult delete_if_ours(std::size_t i, const std::vector<netlink::Endpoint>& table);
  void undo() noexcept;

  netlink::PmBackend& pm_;
  std::optional<netlink::PmLimits> saved_limits_;
  std::vector<netlink::Endpoint> eps_;
  std::vector<std::string> names_;  // path of each eps_ entry
  int errno_ = 0;
};

}  // namespace tunnel
