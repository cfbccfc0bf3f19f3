#include <tunnel/mptcp_socket.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstring>

namespace tunnel {
namespace ip = boost::asio::ip;

std::string check_kernel_support() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, uapi::kIpprotoMptcp);
  if (fd < 0) {
    if (errno == ENOPROTOOPT) return "MPTCP is disabled: set sysctl net.mptcp.enabled=1";
    return "kernel has no MPTCP support (CONFIG_MPTCP): " + std::string(std::strerror(errno));
  }
  ::close(fd);
  if (::access("/dev/net/tun", R_OK | W_OK) != 0)
    return "kernel has no TUN support (/dev/net/tun, CONFIG_TUN): " + std::string(std::strerror(errno));
  return {};
}

int open_mptcp_socket(int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, uapi::kIpprotoMptcp);
  if (fd < 0) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            err == ENOPROTOOPT ? "MPTCP socket (net.mptcp.enabled=0?)"
                                               : "MPTCP socket (CONFIG_MPTCP missing?)");
  }
  return fd;
}

int open_dual_stack_mptcp_socket() {
  const int fd = open_mptcp_socket(AF_INET6);
  const int off = 0;
  if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "MPTCP socket: IPV6_V6ONLY off");
  }
  return fd;
}

ip::tcp::endpoint to_v6_endpoint(const ip::tcp::endpoint& ep) {
  if (ep.address().is_v6()) return ep;
  return {ip::make_address_v6(ip::v4_mapped, ep.address().to_v4()), ep.port()};
}

ip::tcp::endpoint unmapped(const ip::tcp::endpoint& ep) {
  if (ep.address().is_v6() && ep.address().to_v6().is_v4_mapped())
    return {ip::make_address_v4(ip::v4_mapped, ep.address().to_v6()), ep.port()};
  return ep;
}

std::error_code bind_source(int fd, const ip::address& source) {
  const int on = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);  // best effort: saves ports
  sockaddr_storage ss{};
  socklen_t len = 0;
  sockaddr_storage own{};
  socklen_t own_len = sizeof own;
  const bool v6_socket = ::getsockname(fd, reinterpret_cast<sockaddr*>(&own), &own_len) == 0 &&
                         own.ss_family == AF_INET6;
  if (source.is_v4() && !v6_socket) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(source.to_v4().to_uint());
    std::memcpy(&ss, &sin, sizeof sin);
    len = sizeof sin;
  } else {
    const ip::address_v6 a6 =
        source.is_v4() ? ip::make_address_v6(ip::v4_mapped, source.to_v4()) : source.to_v6();
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    const auto b = a6.to_bytes();
    std::memcpy(&sin6.sin6_addr, b.data(), 16);
    sin6.sin6_scope_id = a6.scope_id();
    std::memcpy(&ss, &sin6, sizeof sin6);
    len = sizeof sin6;
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) < 0) return {errno, std::generic_category()};
  return {};
}

std::error_code tune_socket(int fd, const SocketTuning& t) {
  std::error_code first;
  auto set = [&](int level, int opt, int v) {
    if (::setsockopt(fd, level, opt, &v, sizeof v) < 0 && !first) first = {errno, std::generic_category()};
  };
  if (t.nodelay) set(IPPROTO_TCP, TCP_NODELAY, 1);
  if (t.notsent_lowat) set(IPPROTO_TCP, TCP_NOTSENT_LOWAT, static_cast<int>(t.notsent_lowat));
  if (!t.congestion.empty() &&
      ::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, t.congestion.data(), static_cast<socklen_t>(t.congestion.size())) < 0 &&
      !first)
    first = {errno, std::generic_category()};
  if (t.rcvbuf) {
    const int v = static_cast<int>(std::min<std::size_t>(t.rcvbuf, INT_MAX / 2));
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0) {
      if (errno == EPERM) set(SOL_SOCKET, SO_RCVBUF, v);  // no CAP_NET_ADMIN: capped by rmem_max
      else if (!first) first = {errno, std::generic_category()};
    }
  }
  return first;
}

int socket_rcvbuf(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) < 0) return -1;
  return v;
}

bool is_mptcp(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, IPPROTO_TCP, uapi::kTcpIsMptcp, &v, &len) < 0) return false;
  return v != 0;
}

namespace {
ip::tcp::endpoint from_sockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    return {ip::address_v4(ntohl(sin.sin_addr.s_addr)), ntohs(sin.sin_port)};
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &sin6.sin6_addr, 16);
    return {ip::address_v6(b, sin6.sin6_scope_id), ntohs(sin6.sin6_port)};
  }
  return {};
}

// A fixed-size reply: header plus room for kMax elements of `elem` bytes.
constexpr unsigned kMaxSubflows = 16;
}  // namespace

ConnectionStats connection_stats(int fd) {
  ConnectionStats cs;
  cs.rcvbuf = socket_rcvbuf(fd);
  cs.mptcp = is_mptcp(fd);
  if (!cs.mptcp) return cs;

  uapi::MptcpInfo info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, uapi::kSolMptcp, uapi::kMptcpInfo, &info, &len) == 0) cs.token = info.token;

  struct TcpInfoReply {
    uapi::SubflowData hdr;
    uapi::TcpInfo ti[kMaxSubflows];
  } tr{};
  tr.hdr.size_subflow_data = sizeof(uapi::SubflowData);
  tr.hdr.size_user = sizeof(uapi::TcpInfo);
  len = sizeof tr;
  if (::getsockopt(fd, uapi::kSolMptcp, uapi::kMptcpTcpInfo, &tr, &len) < 0) return cs;

  struct AddrsReply {
    uapi::SubflowData hdr;
    struct {
      sockaddr_storage local, remote;
    } a[kMaxSubflows];
  } ar{};
  ar.hdr.size_subflow_data = sizeof(uapi::SubflowData);
  ar.hdr.size_user = sizeof(ar.a[0]);
  len = sizeof ar;
  const bool have_addrs = ::getsockopt(fd, uapi::kSolMptcp, uapi::kMptcpSubflowAddrs, &ar, &len) == 0;

  const unsigned n = std::min<unsigned>(tr.hdr.num_subflows, kMaxSubflows);
  for (unsigned i = 0; i < n; ++i) {
    const uapi::TcpInfo& t = tr.ti[i];
    SubflowStats s;
    s.state = t.state;
    s.rtt_us = t.rtt;
    s.bytes_sent = t.bytes_sent;
    s.bytes_acked = t.bytes_acked;
    s.bytes_received = t.bytes_received;
    s.total_retrans = t.total_retrans;
    // Both lists walk the same subflow list under the socket lock in turn;
    // they agree unless a subflow came or went between the two calls.
    if (have_addrs && i < ar.hdr.num_subflows && ar.hdr.num_subflows == tr.hdr.num_subflows) {
      s.local = from_sockaddr(ar.a[i].local);
      s.remote = from_sockaddr(ar.a[i].remote);
    }
    if (s.state == 1) ++cs.subflows;
    cs.subflow.push_back(s);
  }
  return cs;
}

}  // namespace tunnel
