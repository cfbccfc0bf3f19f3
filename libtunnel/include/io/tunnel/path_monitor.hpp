// The I/O shell of PathTracker: an rtnetlink socket subscribed to link and
// IPv4/IPv6 address events, non-blocking, for the caller's event loop.
//
//   PathMonitor mon({"dsl0", "lte0"}, FamilyPolicy::both);   // subscribes
//   std::vector<PathDecision> d;
//   mon.start(d);              // dumps links and addresses; decisions for now
//   ... wait until mon.fd() is readable ...
//   mon.on_readable(d);        // drains the socket; decisions for what changed
//
// Subscription comes before the dump, so nothing that happens in between is
// missed (events already reflected in the dump are applied again, harmlessly:
// every message carries the object's whole state).
#pragma once

#include <tunnel/path_tracker.hpp>

#include <cstdint>
#include <string>
#include <vector>

struct mnl_socket;  // libmnl

namespace tunnel {

enum class MonitorResult : std::uint8_t {
  ok,        // every queued event applied
  resynced,  // the kernel dropped events (socket overrun); state re-read from a full dump
  failed,    // the socket failed (errno in last_errno()); state is stale until start() again
};
const char* to_string(MonitorResult r);

class PathMonitor {
 public:
  // Opens and subscribes (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
  // RTNLGRP_IPV6_IFADDR). Throws std::system_error at start-up only.
  PathMonitor(std::vector<std::string> paths, FamilyPolicy policy);
  ~PathMonitor();
  PathMonitor(const PathMonitor&) = delete;
  PathMonitor& operator=(const PathMonitor&) = delete;

  // The socket to wait on for readability (non-blocking, close-on-exec).
  int fd() const;

  // Dumps every link, then every address, into the tracker and appends the
  // decisions. Also the way back after `failed`.
  MonitorResult start(std::vector<PathDecision>& out);
  // Reads until the socket would block, applies every link and address
  // message, appends the decisions.
  MonitorResult on_readable(std::vector<PathDecision>& out);

  PathTracker& tracker() { return tracker_; }
  const PathTracker& tracker() const { return tracker_; }
  int last_errno() const { return errno_; }

 private:
  bool dump(std::vector<PathDecision>& out);

  PathTracker tracker_;
  ::mnl_socket* events_ = nullptr;
  std::uint32_t seq_ = 0;
  int errno_ = 0;
};

}  // namespace tunnel
