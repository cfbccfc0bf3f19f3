// The CPE's WAN paths. Each --path interface is followed through rtnetlink
// link and address events (path_monitor.hpp, waited on in the event loop: no
// polling); while it has a usable address it has an MPTCP endpoint for it
// (path_setup.hpp), which the kernel's path manager turns into a subflow of
// the bulk connection. An interface that does not exist yet, or has no
// address, is waited for; a renumbered one has its old endpoint removed and
// the new one added at once; carrier or address loss removes the endpoint
// at once (MPTCP moves the data to the other subflows).
//
// A path with an uplink rate (PathSpec::up_bps) has its egress shaped to
// shaper::kShapePermille of it when it comes up (shaper.hpp), and again when its
// interface comes back with a new index; the shaping goes with stop().
//
// A path that is up but carries no subflow (the in-kernel PM does not
// re-create a subflow that closed) has its endpoint rebuilt, at most every
// `retry`.
//
// A path whose addresses are all of the other family than the first
// subflow's (an IPv6-only LTE next to an IPv4 DSL) cannot be helped by a
// rebuild: its `fullmesh` endpoint connects only to the gateway address that
// the gateway announces, and the in-kernel PM acts on an announcement once
// per connection. Such a path still without a subflow `retry` after its
// endpoint went in, or after update() found it without one, is reported to
// OnStranded, again after 2, 4 ... 32 times `retry` while it stays so; the
// owner re-dials the bulk connection, whose new handshake brings the
// announcement again.
#pragma once

#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/path_monitor.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/path_tracker.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tunnel {

class ClientPaths {
 public:
  using Clock = std::chrono::steady_clock;
  // Called when a path comes up (it has an address) or goes down.
  using OnChange = std::function<void(std::size_t path, bool up)>;
  // Called when a path of the other family is up without a subflow (above).
  using OnStranded = std::function<void(std::size_t path)>;

  ClientPaths(boost::asio::io_context& io, netlink::MptcpPm& pm, std::vector<PathSpec> specs, FamilyPolicy policy,
              std::chrono::milliseconds retry, OnChange on_change);
  ~ClientPaths();
  ClientPaths(const ClientPaths&) = delete;
  ClientPaths& operator=(const ClientPaths&) = delete;

  // Subscribes, reads the current links and addresses, adds endpoints for
  // what is usable now. Throws std::runtime_error.
  void start();
  // Stops listening; the endpoints go with the object.
  void stop();
  // The bulk connection's subflows (from MPTCP_INFO), after a subflow event
  // or on the stats tick (`periodic`): which paths carry one. A path up
  // without a subflow at two periodic checks in a row is rebuilt.
  void update(const ConnectionStats& cs, Clock::time_point now, bool periodic);

  std::size_t size() const { return specs_.size(); }
  const std::string& name(std::size_t i) const { return specs_[i].ifname; }
  PathState state(std::size_t i) const { return mon_->tracker().state(i); }
  const std::vector<boost::asio::ip::address>& addresses(std::size_t i) const { return mon_->tracker().endpoints(i); }
  // The family (AF_INET, AF_INET6) of the gateway address the bulk
  // connection's first subflow goes to. Endpoints of that family are plain
  // `subflow` endpoints, whatever the path's flags: the in-kernel PM connects
  // those to the connection's initial address, again each time the path comes
  // back, while a `fullmesh` one connects only to addresses that current
  // subflows use or the gateway announces, so a path of the first subflow's
  // family that lost its subflow would never get one again. Endpoints whose
  // flags change are re-added.
  void set_primary_family(int family);
  void on_stranded(OnStranded f) { on_stranded_ = std::move(f); }
  // The address of `family` of the first path that is up or carrying: where
  // to connect from, so that a new connection leaves through a working path.
  std::optional<boost::asio::ip::address> usable_source(int family) const;
  // The path's address of `family` (AF_INET, AF_INET6), if it has one.
  std::optional<boost::asio::ip::address> source(std::size_t i, int family) const {
    return mon_->tracker().endpoint(i, family);
  }

 private:
  void wait();
  void apply(const std::vector<PathDecision>& ds);
  void shape(std::size_t path, int ifindex);
  std::uint32_t flags_for(std::size_t path, const boost::asio::ip::address& a) const;
  bool other_family_only(std::size_t path) const;
  void arm_stranded(std::size_t path);

  boost::asio::io_context& io_;
  std::vector<PathSpec> specs_;
  std::chrono::milliseconds retry_;
  OnChange on_change_;
  OnStranded on_stranded_;
  std::optional<PathMonitor> mon_;
  std::optional<PathSetup> setup_;
  netlink::MptcpPm& pm_;
  std::optional<boost::asio::posix::stream_descriptor> sd_;
  std::vector<int> missing_;                     // periodic checks in a row an up path carried no subflow
  std::vector<Clock::time_point> last_rebuild_;
  std::vector<int> shaped_;  // per path: the ifindex whose egress we shaped, 0: none
  std::vector<std::unique_ptr<boost::asio::steady_timer>> stranded_timer_;  // per path
  std::vector<int> stranded_;  // per path: OnStranded calls since it last carried
  std::vector<bool> stranded_armed_;  // per path: its stranded timer waits
  bool stopped_ = false;
  int primary_ = 0;  // AF_UNSPEC: not known yet
};

}  // namespace tunnel
