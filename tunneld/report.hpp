// What `tunneld status` prints: a snapshot of the daemon, its sessions (the
// gateway's CPE table) and counters, as text or JSON.
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/control_channel.hpp>
#include <tunnel/client_paths.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/node.hpp>
#include <tunnel/session.hpp>
#include <tunnel/tun_port.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tunneld {

std::string ep_str(const boost::asio::ip::tcp::endpoint& e);
std::string json_escape(std::string_view s);

using DaemonCounters = tunnel::NodeCounters;

// Sums of session counters: live sessions plus those already destroyed.
struct Totals {
  tunnel::LinkCounters s;
  tunnel::ReplayCounters r;
  void add(const tunnel::Session& session);
};

struct SessionReport {
  std::string cpe_id, remote;
  std::vector<tunnel::Prefix> prefixes;
  std::vector<std::string> groups;
  std::uint64_t session_id = 0;
  bool connected = false;
  std::int64_t last_rx_ms_ago = -1;   // since anything arrived from the peer
  std::int64_t held_ms = -1;          // since the connection was lost (-1: connected)
  std::size_t buffered_packets = 0, buffered_bytes = 0, unsent_packets = 0;
  unsigned links = 0, links_connected = 0;
  tunnel::LinkCounters c;
  tunnel::ReplayCounters r;
  std::optional<tunnel::ConnectionStats> conn;  // link 0's
  tunnel::control::ChannelCounters ctl;         // control messages
  std::size_t ctl_pending = 0, ctl_queued = 0;
  // `id`, `prefixes`, `groups`: empty takes the session's own (the gateway's view).
  static SessionReport of(const tunnel::Node& n, const tunnel::Session& s, const std::string& id,
                          const std::vector<tunnel::Prefix>& prefixes, const std::vector<std::string>& groups);
};

// A CPE's WAN path (--path): its state (waiting, up, carrying, down) and the
// addresses it has an MPTCP endpoint for.
struct PathReport {
  std::string name, state;
  std::vector<std::string> addresses;
  static std::vector<PathReport> of(const tunnel::ClientPaths& paths);
};

// One flow of the traffic classifier: what class its packets get and why.
struct FlowReport {
  std::string src, dst;
  unsigned sport = 0, dport = 0, proto = 0;
  std::string cls, why;
  std::uint32_t rate_bps = 0, mean_bytes = 0;
  std::uint64_t packets = 0;
  // The classifier's live flows (at most `max`).
  static std::vector<FlowReport> of(const tunnel::classify::Classifier& c, std::size_t max);
  static std::string json(const std::vector<FlowReport>& flows);
  static std::string text(const std::vector<FlowReport>& flows);
};

struct Report {
  Report(std::string role, std::string tun, std::string state, std::chrono::steady_clock::duration up)
      : role(std::move(role)), tun_name(std::move(tun)), state(std::move(state)), uptime(up) {}
  std::string role, tun_name, state;
  std::chrono::steady_clock::duration uptime;
  tunnel::TunCounters tun;
  DaemonCounters daemon;
  std::uint64_t log_dropped = 0;  // log lines dropped by the full logging queue (tunnel/log.hpp)
  Totals totals;
  tunnel::control::ChannelCounters ctl;  // control messages, all sessions, live and ended
  std::size_t ctl_pending = 0, handlers_running = 0;
  std::vector<SessionReport> sessions;
  std::optional<std::vector<PathReport>> paths;  // a CPE's, when it manages paths
  std::optional<std::vector<FlowReport>> flows;  // with traffic classes on
  tunnel::classify::ClassifierCounters classes;
  std::string json() const;
  std::string text() const;
  // Everything a node knows: its counters, its sessions (the CPE names its
  // own with `cpe_id` and `prefixes`).
  static Report of(const tunnel::Node& n, const std::string& tun, const std::string& cpe_id = {},
                   const std::vector<tunnel::Prefix>& prefixes = {}, const std::vector<std::string>& groups = {});
};

}  // namespace tunneld
