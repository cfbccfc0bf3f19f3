#include <tunnel/rtnl.hpp>

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
  Sock s = connect_route();
  nl_cache* cache = nullptr;
  if (int err = rtnl_addr_alloc_cache(s.get(), &cache); err < 0) fail(err, "rtnetlink: list addresses");
  std::optional<ip::address> found;
  for (nl_object* o = nl_cache_get_first(cache); o && !found; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifidx || rtnl_addr_get_family(a) != family) continue;
    if (rtnl_addr_get_scope(a) != RT_SCOPE_UNIVERSE) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (!local) continue;
    if (family == AF_INET && nl_addr_get_len(local) == 4) {
      ip::address_v4::bytes_type b;
      std::memcpy(b.data(), nl_addr_get_binary_addr(local), 4);
      found = ip::address_v4(b);
    } else if (family == AF_INET6 && nl_addr_get_len(local) == 16) {
      ip::address_v6::bytes_type b;
      std::memcpy(b.data(), nl_addr_get_binary_addr(local), 16);
      found = ip::address_v6(b);
    }
  }
  nl_cache_free(cache);
  return found;
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
