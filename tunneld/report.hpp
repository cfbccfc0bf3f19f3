// What `tunneld status` prints: a snapshot of the daemon, its sessions (the
// gateway's CPE table) and counters, as text or JSON.
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/mptcp_socket.hpp>
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

// Counted by the daemon rather than by a session.
struct DaemonCounters {
  std::uint64_t handshake_failures = 0;  // connections refused during the handshake (any reason)
  std::uint64_t auth_failures = 0;       // of those: wrong proof or unknown id
  std::uint64_t handshake_timeouts = 0;  // of those: no HELLO in time
  std::uint64_t rejected_pending = 0;    // closed at once: too many handshakes pending
  std::uint64_t sessions_created = 0;
  std::uint64_t sessions_closed = 0;     // ended by CLOSE
  std::uint64_t sessions_expired = 0;    // not resumed within the hold time
  std::uint64_t sessions_replaced = 0;   // the same CPE id started a new session
  std::uint64_t drop_no_route = 0;       // TUN packet for no CPE's prefix
  std::array<std::uint64_t, tunnel::wire::kParseStatusCount> proto_errors{};  // during handshakes
};

// Sums of session counters: live sessions plus those already destroyed.
struct Totals {
  tunnel::SessionCounters s;
  tunnel::ReplayCounters r;
  void add(const tunnel::Session& session);
};

struct SessionReport {
  std::string cpe_id, remote;
  std::vector<tunnel::Prefix> prefixes;
  std::uint64_t session_id = 0;
  bool connected = false;
  std::int64_t last_rx_ms_ago = -1;   // since anything arrived from the peer
  std::int64_t held_ms = -1;          // since the connection was lost (-1: connected)
  std::size_t buffered_packets = 0, buffered_bytes = 0, unsent_packets = 0;
  tunnel::SessionCounters c;
  tunnel::ReplayCounters r;
  std::optional<tunnel::ConnectionStats> conn;
  static SessionReport of(const tunnel::Session& s, const std::string& id, const std::string& remote,
                          const std::vector<tunnel::Prefix>& prefixes);
};

struct Report {
  Report(std::string role, std::string tun, std::string state, std::chrono::steady_clock::duration up)
      : role(std::move(role)), tun_name(std::move(tun)), state(std::move(state)), uptime(up) {}
  std::string role, tun_name, state;
  std::chrono::steady_clock::duration uptime;
  tunnel::TunCounters tun;
  DaemonCounters daemon;
  Totals totals;
  std::vector<SessionReport> sessions;
  std::string json() const;
  std::string text() const;
};

}  // namespace tunneld
