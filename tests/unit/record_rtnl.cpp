// Prints the rtnetlink link and address events the kernel sends while
// tests/unit/record_rtnl.sh changes interfaces in a scratch namespace, as the
// C arrays of recorded_rtnl.hpp. Not built by default:
//   g++ -std=c++20 -O1 -o /tmp/record_rtnl tests/unit/record_rtnl.cpp -lmnl
//   tests/unit/record_rtnl.sh /tmp/record_rtnl > tests/unit/recorded_rtnl.hpp
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <poll.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
  if (!nl || mnl_socket_bind(nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, MNL_SOCKET_AUTOPID) < 0) {
    std::perror("rtnetlink");
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  static char buf[32768];
  int n_msgs = 0;
  pollfd p{mnl_socket_get_fd(nl), POLLIN, 0};
  while (poll(&p, 1, seconds * 1000) > 0) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n <= 0) break;
    int rem = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); mnl_nlmsg_ok(h, rem); h = mnl_nlmsg_next(h, &rem)) {
      std::printf("MSG %d %u", n_msgs++, h->nlmsg_len);
      for (unsigned i = 0; i < h->nlmsg_len; ++i) std::printf(" %u", reinterpret_cast<const std::uint8_t*>(h)[i]);
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return 0;
}
