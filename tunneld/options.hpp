// Command-line options of the tunneld roles. Parsing lives in main.cpp.
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/class_rules.hpp>
#include <tunnel/path_setup.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tunneld {

struct CommonOptions {
  std::string tun;
  unsigned mtu = 1500;
  std::vector<tunnel::Prefix> tun_addresses;
  std::string status_socket;  // empty: default_status_socket(tun)
  std::string log_level = "info";
  bool allow_non_udp = false;
  bool tun_offload = true;
  std::size_t send_queue_bytes = 256 * 1024;
  unsigned notsent_lowat = 128 * 1024;
  std::size_t socket_rcvbuf = 4u << 20;        // SO_RCVBUF of the tunnel connection; 0: kernel autotuning
  std::string congestion;                      // empty: the system default
  std::size_t batch_bytes = 8192;              // DATA frame that packets may share; 0: one a frame
  bool header_compression = true;
  std::chrono::milliseconds stats_interval{5000};
  // Session layer.
  std::string psk_file;                        // empty only with insecure_no_auth
  bool insecure_no_auth = false;
  bool integrity_only = false;                 // frames authenticated, not encrypted
  bool require_protection = false;             // refuse connections whose frames are not protected
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds dead_interval{3000};
  std::size_t buffer_bytes = 8u << 20;
  std::chrono::milliseconds buffer_age{5000};
  std::chrono::milliseconds session_hold{30000};
  // Control messages.
  std::string on_message;                      // handler program; empty: only the built-in topics
  unsigned max_handlers = 16;
  unsigned message_queue = 64;
  std::chrono::seconds handler_timeout{30};
  // Traffic classes.
  std::string realtime_mode = "redundant";     // redundant or off
  std::vector<tunnel::classify::Rule> class_rules;
};

struct ServerOptions : CommonOptions {
  std::vector<boost::asio::ip::tcp::endpoint> listen;  // one or more (e.g. one per family)
  std::string id;                              // told to CPEs in the handshake; default: the host name
  unsigned max_cpes = 1024;
  bool allow_unbound_prefixes = false;
  unsigned max_pending = 256;
  unsigned max_pending_per_source = 32;
  // Buffer memory of all sessions (GatewayConfig::memory_limit); nullopt:
  // half the RAM (sysconf), so a mass disconnect that fills every replay
  // buffer makes the gateway shed instead of meeting the OOM killer.
  std::optional<std::size_t> memory_limit;
  std::chrono::milliseconds handshake_timeout{5000};
  std::vector<std::string> shape_downlink;  // interfaces whose egress is shaped per CPE path
};

struct ClientOptions : CommonOptions {
  std::vector<boost::asio::ip::tcp::endpoint> servers;  // the gateway: one address, or one per family
  std::string id;                              // default: the host name
  std::vector<tunnel::Prefix> prefixes;        // inner prefixes announced to the gateway
  std::vector<std::string> groups;             // control message groups announced to the gateway
  std::vector<tunnel::PathSpec> paths;         // --path then --backup-path, flags and rates set
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_max{1000};
  std::chrono::milliseconds path_retry{2000};
};

std::string default_status_socket(const std::string& tun);

int run_server(const ServerOptions& o);
int run_client(const ClientOptions& o);
// `tunneld status`: prints the daemon's status; returns the exit code.
int run_status(const std::string& socket_path, bool json);

}  // namespace tunneld
