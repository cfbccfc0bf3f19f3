// Kernel MPTCP sockets: creation, tuning, fallback detection and per-subflow
// statistics. The sockets are plain fds; the caller wraps them in Asio.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace tunnel {

// Empty when the kernel can create MPTCP sockets and TUN devices; otherwise
// one line naming what is missing, for the user.
std::string check_kernel_support();

// socket(family, SOCK_STREAM, IPPROTO_MPTCP), non-blocking and close-on-exec.
// Throws std::system_error explaining a kernel without MPTCP.
int open_mptcp_socket(int family);

// socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP) with IPV6_V6ONLY off: one
// connection for both families, IPv4 peers as v4-mapped addresses
// (to_v6_endpoint). The kernel refuses IPv6 subflows on an AF_INET MPTCP
// connection; on this socket the path manager adds subflows of either family
// (docs/operations.md, "Both families"). A listener made from it accepts IPv4 and
// IPv6 connections and joins. Non-blocking, close-on-exec. Throws
// std::system_error.
int open_dual_stack_mptcp_socket();

// `ep` for an AF_INET6 socket: an IPv4 address becomes v4-mapped
// (::ffff:a.b.c.d); an IPv6 one is returned as it is.
boost::asio::ip::tcp::endpoint to_v6_endpoint(const boost::asio::ip::tcp::endpoint& ep);
// The reverse, for logs and comparisons: a v4-mapped address becomes IPv4.
boost::asio::ip::tcp::endpoint unmapped(const boost::asio::ip::tcp::endpoint& ep);

// Binds `fd` to `source` with port 0, leaving the port to connect()
// (IP_BIND_ADDRESS_NO_PORT), so that a plain TCP connection per path leaves
// with that path's address (and so by its source rule). An IPv4 source on an
// AF_INET6 socket is bound as v4-mapped. Returns the bind's error.
std::error_code bind_source(int fd, const boost::asio::ip::address& source);

struct SocketTuning {
  bool nodelay = true;
  // Unsent bytes the kernel may hold before the socket stops being writable;
  // 0 leaves the system default. Keeps the in-kernel queue, and so the
  // latency a UDP packet waits behind, short.
  unsigned notsent_lowat = 128 * 1024;
  // TCP_CONGESTION for the connection and its subflows; empty: the system's.
  std::string congestion;
  // SO_RCVBUF of the connection and its subflows in bytes (the kernel doubles
  // it for overhead); 0 leaves the kernel's autotuning. Set with
  // SO_RCVBUFFORCE, so net.core.rmem_max does not cap it (CAP_NET_ADMIN;
  // without it, SO_RCVBUF, capped). Why a fixed size: docs/measurements.md,
  // "The kernel's MPTCP receive hang".
  std::size_t rcvbuf = 0;
};

// The connection's SO_RCVBUF as the kernel reports it (twice what was set).
int socket_rcvbuf(int fd);

// Applies `t`; returns the first error (the socket stays usable).
std::error_code tune_socket(int fd, const SocketTuning& t);

struct SubflowStats {
  boost::asio::ip::tcp::endpoint local, remote;
  std::uint8_t state = 0;  // TCP_ESTABLISHED == 1
  std::uint32_t rtt_us = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_received = 0;
  std::uint32_t total_retrans = 0;
};

struct ConnectionStats {
  bool mptcp = false;      // false: fell back to plain TCP
  std::uint32_t token = 0; // MPTCP connection token (matches PM events)
  unsigned subflows = 0;   // established subflows, from MPTCP_TCPINFO
  int rcvbuf = -1;         // SO_RCVBUF as the kernel reports it
  std::vector<SubflowStats> subflow;
};

// Reads MPTCP_INFO / MPTCP_TCPINFO / MPTCP_SUBFLOW_ADDRS. Cheap enough to call
// every few seconds; not per packet.
ConnectionStats connection_stats(int fd);

// TCP_IS_MPTCP: false when the connection fell back to TCP.
bool is_mptcp(int fd);

}  // namespace tunnel
