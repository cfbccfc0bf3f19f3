// Which WAN paths are usable now, from rtnetlink link and address messages.
// Pure: messages in, decisions out; no sockets (PathMonitor feeds it).
//
// Each configured path is an interface name. The tracker keeps every link and
// every usable address it is told about, finds each path's link by name (an
// interface that disappears and comes back with another index, or is renamed
// to the path's name, is picked up again), and after each message derives
// what each path should have and compares it with what it has:
//
//   no link with that name                 -> waiting
//   link not IFF_UP or not IFF_RUNNING     -> down     (no carrier, or oper down)
//   link running, no usable address        -> waiting
//   link running, usable address           -> up, or carrying once the caller
//                                             reports an established subflow
//
// An address is usable when its scope is global and it is neither tentative
// (DAD not finished) nor dadfailed. Per family, a path uses one address: the
// current one while it stays usable and no better one exists, else the best
// (not deprecated, then not temporary/secondary, then the earliest seen).
// Which families a path uses is the FamilyPolicy.
//
// Decisions come out in the order they must be carried out: every
// remove_endpoint before the add_endpoint that replaces it (renumbering), the
// endpoints of a path that lost carrier or address removed before its
// path_down, path_up after the path's first add_endpoint.
#pragma once

#include <tunnel/rtnl_msg.hpp>

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tunnel {

enum class PathState : std::uint8_t { waiting, up, carrying, down };
const char* to_string(PathState s);

enum class FamilyPolicy : std::uint8_t {
  both,       // an endpoint for each family the path has
  prefer_v4,  // the IPv4 address when there is one, else the IPv6 one
  prefer_v6,
  only_v4,
  only_v6,
};

struct PathDecision {
  enum class Kind : std::uint8_t {
    add_endpoint,     // path, addr, ifindex: create an endpoint for addr on ifindex
    remove_endpoint,  // path, addr: remove the endpoint for addr
    path_up,          // path: has carrier and at least one endpoint address
    path_down,        // path: lost its last endpoint address, its carrier or its link
  };
  Kind kind;
  std::size_t path = 0;  // index in the names given to the constructor
  boost::asio::ip::address addr;
  int ifindex = 0;
  bool operator==(const PathDecision&) const = default;
};

struct PathAddress {
  boost::asio::ip::address addr;
  std::uint8_t prefixlen = 0;
  std::uint32_t flags = 0;  // IFA_F_*
  std::uint64_t seen = 0;   // arrival order, for "earliest seen"
};

class PathTracker {
 public:
  // `names`: one interface name per path, distinct.
  explicit PathTracker(std::vector<std::string> names, FamilyPolicy policy = FamilyPolicy::both);

  // Apply one message; append the resulting decisions to `out`. Messages for
  // interfaces that are not paths are kept (a link renamed to a path's name
  // brings its addresses) but produce no decisions.
  void on_link(const netlink::LinkMsg& m, std::vector<PathDecision>& out);
  void on_addr(const netlink::AddrMsg& m, std::vector<PathDecision>& out);

  // A full dump replaces what is known: begin_snapshot(), then on_link() and
  // on_addr() for every dumped message (they produce no decisions meanwhile),
  // then end_snapshot() appends the decisions that bring the paths from
  // their previous endpoints to the dumped state. Used for the initial dump
  // and to resynchronise after lost events.
  void begin_snapshot();
  void end_snapshot(std::vector<PathDecision>& out);

  // The caller's report: path `i` has (true) or no longer has (false) an
  // established subflow. Moves up <-> carrying; ignored for a path that is
  // waiting or down.
  void set_carrying(std::size_t i, bool carrying);

  std::size_t size() const { return paths_.size(); }
  const std::string& name(std::size_t i) const { return paths_.at(i).name; }
  PathState state(std::size_t i) const { return paths_.at(i).state; }
  // 0 while the path has no link.
  int ifindex(std::size_t i) const { return paths_.at(i).ifindex; }
  // The addresses the path has endpoints for now (at most one per family).
  const std::vector<boost::asio::ip::address>& endpoints(std::size_t i) const { return paths_.at(i).endpoints; }
  // The endpoint address of `family` (AF_INET/AF_INET6), if any.
  std::optional<boost::asio::ip::address> endpoint(std::size_t i, int family) const;
  // Every usable address of the path's link, in arrival order.
  std::vector<PathAddress> usable_addresses(std::size_t i) const;
  // The path whose endpoint is `a` (a v4-mapped IPv6 address matches its IPv4
  // form), or whose link has index `ifindex`.
  std::optional<std::size_t> path_of_address(const boost::asio::ip::address& a) const;
  std::optional<std::size_t> path_of_ifindex(int ifindex) const;

 private:
  struct Link {
    std::string name;
    unsigned flags = 0;
  };
  struct Path {
    std::string name;
    PathState state = PathState::waiting;
    int ifindex = 0;
    std::vector<boost::asio::ip::address> endpoints;
  };

  void update(std::vector<PathDecision>& out);
  void update_path(std::size_t i, std::vector<PathDecision>& out);
  std::optional<PathAddress> pick(const Path& p, int link, bool v6) const;

  std::vector<Path> paths_;
  FamilyPolicy policy_;
  std::unordered_map<int, Link> links_;
  std::unordered_map<int, std::vector<PathAddress>> addrs_;  // usable ones, per ifindex
  std::uint64_t seq_ = 0;
  bool in_snapshot_ = false;
};

}  // namespace tunnel
