// The flags both roles share, and their conversion after parsing (flags.hpp).
#include "flags.hpp"

#include <tunnel/control_wire.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_rate.hpp>
#include <tunnel/wire.hpp>

#include <unistd.h>

#include <algorithm>
#include <iterator>

namespace tunneld {



void add_common(CLI::App* app, CommonOptions& o, Raw& raw) {
  auto& tun_addrs = raw.tun_addrs;
  auto& send_queue = raw.send_queue;
  auto& lowat = raw.lowat;
  auto& stats_ms = raw.stats_ms;
  app->add_option("--tun", o.tun, "TUN device to create or attach to (e.g. ha0)")->required();
  app->add_option("--tun-address", tun_addrs, "Address to put on the TUN device, CIDR; repeatable");
  app->add_option("--mtu", o.mtu, "TUN MTU; datagrams up to this size travel whole")
      ->capture_default_str()
      ->check(CLI::Range(576u, 65535u));
  app->add_option("--status-socket", o.status_socket,
                  "Unix socket for `tunneld status` (default /run/tunneld/TUN.sock)");
  app->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app->add_flag("--allow-non-udp", o.allow_non_udp,
                "Carry every IP packet, not only UDP (default: count and drop the rest)");
  app->add_option("--tun-offload", o.tun_offload,
                  "Write same-flow datagrams to the TUN as one UDP GSO packet (IFF_VNET_HDR); the kernel "
                  "splits it back into the same datagrams")
      ->capture_default_str();
  app->add_option("--send-queue", send_queue,
                  "Unsent bytes allowed per session while connected; beyond it new packets are dropped and "
                  "counted (kept instead when the socket took nothing, or the peer acknowledged nothing, "
                  "for 500 ms: a stall, not overload). What a stall kept, or a resume replays, does not count "
                  "against it until sent")
      ->default_str("262144");
  app->add_option("--notsent-lowat", lowat, "TCP_NOTSENT_LOWAT of the MPTCP socket in bytes (0: kernel default)")
      ->default_str("131072");
  app->add_option("--socket-rcvbuf", raw.rcvbuf,
                  "SO_RCVBUF of the MPTCP connection and its subflows in bytes, fixed; the kernel doubles it "
                  "(0: kernel autotuning)")
      ->default_str("4194304");
  app->add_option("--batch-bytes", raw.batch_bytes,
                  "Largest DATA frame that packets may share (one header for all; 0: one packet a frame). "
                  "Packets share a frame only when they wait together: read from the TUN in one batch, or "
                  "queued behind a busy socket; none is held back to fill a frame")
      ->default_str("8192");
  app->add_flag("!--no-header-compression", o.header_compression,
                "Send every packet whole; by default a UDP datagram whose IP and UDP headers repeat an earlier "
                "packet of its frame sends only its IPv4 ID and UDP checksum (7 bytes, IPv6: 5, for 28 or 48)");
  app->add_option("--congestion", o.congestion,
                  "TCP congestion control for the tunnel's connection and subflows, e.g. bbr or cubic "
                  "(default: the system's, net.ipv4.tcp_congestion_control)");
  app->add_option("--stats-interval", stats_ms, "Milliseconds between subflow/fallback checks")
      ->capture_default_str()
      ->check(CLI::Range(100u, 3600000u));
  auto* psk = app->add_option("--psk-file", o.psk_file,
                              "Pre-shared key file (mode 600). CPE: one line, the key (64-128 hex digits: "
                              "openssl rand -hex 32). Gateway: lines 'ID KEY [PREFIX[,PREFIX...]] "
                              "[groups=NAME[,NAME...]]' (the prefixes it may claim, the groups it may announce), "
                              "and/or one line 'KEY' for any id");
  auto* insecure = app->add_flag("--insecure-no-auth", o.insecure_no_auth,
                                 "Run without --psk-file: no authentication at all (testing only; logs a warning)");
  psk->excludes(insecure);
  app->add_flag("--integrity-only", o.integrity_only,
                "Authenticate frames after the handshake without encrypting them (either end may ask; "
                "the payload then crosses the WAN in clear)");
  auto* req = app->add_flag("--require-protection", o.require_protection,
                            "Refuse connections whose frames are not protected (a protocol 3 peer; default off "
                            "so that version 3 peers are served during an upgrade, docs/security.md)");
  req->excludes(insecure);
  app->add_option("--heartbeat", raw.heartbeat_ms, "Milliseconds between heartbeats sent to the peer")
      ->capture_default_str()
      ->check(CLI::Range(50u, 60000u));
  app->add_option("--dead-interval", raw.dead_ms,
                  "Milliseconds of silence (or of unacknowledged data) after which the peer counts as gone and "
                  "the connection is dropped")
      ->capture_default_str()
      ->check(CLI::Range(200u, 600000u));
  app->add_option("--buffer-bytes", raw.buffer_bytes,
                  "Replay buffer per session: sent but unacknowledged frames, and packets queued while "
                  "disconnected; the oldest are dropped (counted) beyond it")
      ->default_str("8388608");
  app->add_option("--buffer-age", raw.buffer_age_ms,
                  "Milliseconds a packet may wait in the replay buffer before it is dropped (counted)")
      ->capture_default_str()
      ->check(CLI::Range(100u, 600000u));
  app->add_option("--session-hold", raw.hold_ms,
                  "Milliseconds a session without a connection is kept for resume before it and its buffer "
                  "are dropped (counted)")
      ->capture_default_str()
      ->check(CLI::Range(100u, 86400000u));
  app->add_option("--realtime-mode", o.realtime_mode,
                  "redundant: a realtime packet (see --class) goes on every path's realtime link at once and the "
                  "receiver keeps the first copy; off: every packet rides the bulk connection")
      ->capture_default_str()
      ->check(CLI::IsMember({"redundant", "off"}));
  app->add_option("--class", raw.class_rules,
                  "Traffic class rule, CLASS:KEY=VALUE[,KEY=VALUE...], tried in order before the defaults "
                  "(DSCP EF, AF4x, CS4, CS5, and small low-rate flows are realtime). CLASS is realtime or bulk; "
                  "keys: proto (udp, tcp or a number), sport, dport (N or N-M), src, dst (CIDR), dscp "
                  "(a number or a name such as ef, af41, cs5). Repeatable, e.g. "
                  "--class realtime:proto=udp,dport=3478-3481 --class bulk:dst=198.51.100.0/24");
  app->add_option("--on-message", o.on_message,
                  "Control message handler: run as PROGRAM TOPIC for each message from the peer, the body on "
                  "stdin, TUNNELD_MSG_ID and TUNNELD_PEER_ID in its environment; its stdout (up to 64 KiB) and "
                  "exit code are the result. One at a time per session, in arrival order. Without it every "
                  "topic but tunneld.ping and tunneld.status is answered no-handler");
  app->add_option("--max-handlers", o.max_handlers, "Most handlers running at once across the daemon")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app->add_option("--message-queue", o.message_queue,
                  "Messages waiting for the handler per session; beyond it a message is answered busy at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65536u));
  app->add_option("--handler-timeout", raw.handler_timeout_s,
                  "Seconds a handler may run; then its process group is killed and the message answered timeout")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
}

std::size_t parse_size(const std::string& s, const char* flag, std::size_t min, std::size_t max) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    pos = std::string::npos;
  }
  if (pos != s.size() || v < min || v > max) {
    throw CLI::ValidationError(std::string(flag), "'" + s + "' is not a byte count in [" + std::to_string(min) +
                                                      ", " + std::to_string(max) + "]");
  }
  return static_cast<std::size_t>(v);
}

void finish_common(CommonOptions& o, const Raw& raw) {
  if (o.psk_file.empty() && !o.insecure_no_auth)
    throw CLI::ValidationError("--psk-file", "required (or --insecure-no-auth to run without authentication)");
  for (const auto& a : raw.tun_addrs) {
    try {
      o.tun_addresses.push_back(tunnel::parse_prefix(a));
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--tun-address", e.what());
    }
  }
  if (!raw.send_queue.empty())
    o.send_queue_bytes = parse_size(raw.send_queue, "--send-queue", 16 * 1024, 64u << 20);
  if (!raw.lowat.empty())
    o.notsent_lowat = static_cast<unsigned>(parse_size(raw.lowat, "--notsent-lowat", 0, 64u << 20));
  if (!raw.rcvbuf.empty()) o.socket_rcvbuf = parse_size(raw.rcvbuf, "--socket-rcvbuf", 0, 512u << 20);
  if (o.socket_rcvbuf && o.socket_rcvbuf < 64 * 1024)
    throw CLI::ValidationError("--socket-rcvbuf", "must be 0 (autotuning) or at least 65536");
  if (!raw.batch_bytes.empty()) o.batch_bytes = parse_size(raw.batch_bytes, "--batch-bytes", 0, 65535);
  if (!raw.buffer_bytes.empty())
    o.buffer_bytes = parse_size(raw.buffer_bytes, "--buffer-bytes", 64 * 1024, std::size_t{1} << 30);
  o.stats_interval = std::chrono::milliseconds(raw.stats_ms);
  o.heartbeat = std::chrono::milliseconds(raw.heartbeat_ms);
  o.dead_interval = std::chrono::milliseconds(raw.dead_ms);
  o.buffer_age = std::chrono::milliseconds(raw.buffer_age_ms);
  o.session_hold = std::chrono::milliseconds(raw.hold_ms);
  o.handler_timeout = std::chrono::seconds(raw.handler_timeout_s);
  for (const auto& r : raw.class_rules) {
    const auto p = tunnel::classify::parse_rule(r);
    if (p.error != tunnel::classify::RuleError::ok)
      throw CLI::ValidationError("--class", "'" + r + "': " + std::string(tunnel::classify::to_string(p.error)) +
                                                " at offset " + std::to_string(p.at));
    o.class_rules.push_back(p.rule);
  }
  if (o.dead_interval <= o.heartbeat)
    throw CLI::ValidationError("--dead-interval", "must be longer than --heartbeat (three times is usual)");
  if (o.status_socket.empty()) o.status_socket = tunneld::default_status_socket(o.tun);
}

boost::asio::ip::tcp::endpoint endpoint_flag(const std::string& v, const char* flag) {
  try {
    return tunnel::parse_host_port(v);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(flag, e.what());
  }
}

tunnel::PathSpec path_flag(const std::string& v, const char* flag) {
  const auto p = tunnel::parse_path_spec(v);
  if (p.error != tunnel::RateError::ok)
    throw CLI::ValidationError(flag, "'" + v + "' at offset " + std::to_string(p.at) + ": " +
                                         std::string(tunnel::to_string(p.error)) + " (IFNAME[,up=RATE][,down=RATE])");
  tunnel::PathSpec s{std::string(p.spec.name), 0, p.spec.up_bps, p.spec.down_bps};
  if (std::string_view(flag) == "--backup-path") s.flags = tunnel::uapi::kPmAddrFlagBackup;
  return s;
}

// --id, or the host name when empty; 1..64 printable ASCII characters.
std::string checked_id(std::string id) {
  if (id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    id = host;
  }
  if (id.empty() || id.size() > 64 || std::any_of(id.begin(), id.end(), [](char c) { return c <= 0x20 || c >= 0x7f; }))
    throw CLI::ValidationError("--id", "must be 1..64 printable ASCII characters without spaces");
  return id;
}

}  // namespace tunneld
