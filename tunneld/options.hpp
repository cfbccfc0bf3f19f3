// Command-line options of the tunneld roles. Parsing lives in main.cpp.
#pragma once

#include <tunnel/address.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
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
  std::chrono::milliseconds stats_interval{5000};
};

struct ServerOptions : CommonOptions {
  boost::asio::ip::tcp::endpoint listen;
};

struct ClientOptions : CommonOptions {
  boost::asio::ip::tcp::endpoint server;
  std::vector<std::string> paths;
  std::vector<std::string> backup_paths;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_max{2000};
  std::chrono::milliseconds path_retry{2000};
};

std::string default_status_socket(const std::string& tun);

int run_server(const ServerOptions& o);
int run_client(const ClientOptions& o);
// `tunneld status`: prints the daemon's status; returns the exit code.
int run_status(const std::string& socket_path, bool json);

}  // namespace tunneld
