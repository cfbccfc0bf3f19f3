// Prints mptcp_pm replies as C arrays, to refresh recorded_netlink.hpp. Not built
// by default; run it in a scratch namespace set up as that header says:
//   I=libtunnel/include L=build/libtunnel
//   g++ -std=c++20 -I$I/wire -I$I/codecs -I$I/io tests/unit/record_netlink.cpp $L/libtunnel_{io,codecs,wire}.a -lmnl -lspdlog -lfmt
#include <tunnel/mptcp_pm.hpp>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <cstdio>
#include <cstdint>
using namespace tunnel::netlink;
static void dump(const char* name, const void* buf, size_t n) {
  printf("%s (%zu):", name, n);
  for (size_t i = 0; i < n; ++i) printf("%s0x%02x,", i % 16 ? "" : "\n  ", ((const uint8_t*)buf)[i]);
  printf("\n");
}
static size_t req(mnl_socket*, nlmsghdr* nlh, char* out) {
  mnl_socket* nl = mnl_socket_open(NETLINK_GENERIC); mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID);
  mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
  return mnl_socket_recvfrom(nl, out, 32768);
}
int main() {
  MptcpPm pm;  // prepares: resolves the family id
  mnl_socket* nl = mnl_socket_open(NETLINK_GENERIC); mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID);
  static char b[32768], o[32768];
  size_t n = req(nl, build_get_family(b, 1, "mptcp_pm"), o); dump("family", o, n);
  n = req(nl, build_get_limits(b, pm.family_id(), 2), o); dump("limits", o, n);
  n = req(nl, build_get_addr_dump(b, pm.family_id(), 3), o); dump("addrs", o, n);
}
