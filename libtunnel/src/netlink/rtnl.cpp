#include <tunnel/rtnl.hpp>
#include <tunnel/rtnl_addr.hpp>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace tunnel::rtnl {
namespace ip = boost::asio::ip;
namespace {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
using Sock = std::unique_ptr<nl_sock, SockDeleter>;

[[noreturn]] void fail(int nlerr, const std::string& what) {
  throw std::runtime_error(what + ": " + nl_geterror(nlerr));
}

Sock connect_route() {
  Sock s(nl_socket_alloc());
  if (!s) throw std::system_error(ENOMEM, std::generic_category(), "rtnetlink: allocate socket");
  if (int err = nl_connect(s.get(), NETLINK_ROUTE); err < 0) fail(err, "rtnetlink: connect");
  return s;
}

nl_addr* to_nl_addr(const ip::address& a, unsigned prefixlen) {
  nl_addr* n;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    n = nl_addr_build(AF_INET, b.data(), b.size());
  } else {
    const auto b = a.to_v6().to_bytes();
    n = nl_addr_build(AF_INET6, b.data(), b.size());
  }
  if (n) nl_addr_set_prefixlen(n, static_cast<int>(prefixlen));
  return n;
}

}  // namespace

int ifindex(const std::string& name) {
  const unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) throw std::system_error(errno, std::generic_category(), "no interface named '" + name + "'");
  return static_cast<int>(idx);
}

std::optional<ip::address> primary_address(int ifidx, int family) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl) throw std::system_error(errno, std::generic_category(), "rtnetlink: open socket");
  struct Closer {
    mnl_socket* nl;
    ~Closer() { mnl_socket_close(nl); }
  } closer{nl};
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    throw std::system_error(errno, std::generic_category(), "rtnetlink: bind");
  alignas(nlmsghdr) char buf[32768];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  const std::uint32_t seq = nlh->nlmsg_seq = 1;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<std::uint8_t>(family);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
    throw std::system_error(errno, std::generic_category(), "rtnetlink: list addresses");
  struct Want {
    int ifidx, family;
    std::optional<ip::address> found;
  } want{ifidx, family, std::nullopt};
  const auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* w = static_cast<Want*>(data);
    if (!w->found) w->found = parse_global_address(m, w->ifidx, w->family);  // the kernel's order: first wins
    return MNL_CB_OK;
  };
  const unsigned portid = mnl_socket_get_portid(nl);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n < 0) throw std::system_error(errno, std::generic_category(), "rtnetlink: list addresses");
    const int r = mnl_cb_run(buf, static_cast<std::size_t>(n), seq, portid, cb, &want);
    if (r == MNL_CB_STOP) break;
    if (r < 0) throw std::system_error(errno, std::generic_category(), "rtnetlink: list addresses");
  }
  return want.found;
}

void set_mtu_and_up(int ifidx, unsigned mtu) {
  Sock s = connect_route();
  rtnl_link* orig = nullptr;
  if (int err = rtnl_link_get_kernel(s.get(), ifidx, nullptr, &orig); err < 0)
    fail(err, "rtnetlink: get link " + std::to_string(ifidx));
  rtnl_link* change = rtnl_link_alloc();
  rtnl_link_set_mtu(change, mtu);
  rtnl_link_set_flags(change, IFF_UP);
  const int err = rtnl_link_change(s.get(), orig, change, 0);
  rtnl_link_put(change);
  rtnl_link_put(orig);
  if (err < 0) fail(err, "rtnetlink: set MTU " + std::to_string(mtu) + " and up");
}

void add_address(int ifidx, const Prefix& p) {
  Sock s = connect_route();
  rtnl_addr* a = rtnl_addr_alloc();
  nl_addr* local = to_nl_addr(p.addr, p.length);
  rtnl_addr_set_ifindex(a, ifidx);
  rtnl_addr_set_local(a, local);
  rtnl_addr_set_prefixlen(a, static_cast<int>(p.length));
  int err = rtnl_addr_add(s.get(), a, 0);
  nl_addr_put(local);
  rtnl_addr_put(a);
  if (err == -NLE_EXIST) err = 0;
  if (err < 0) fail(err, "rtnetlink: add address " + p.to_string());
}

}  // namespace tunnel::rtnl
