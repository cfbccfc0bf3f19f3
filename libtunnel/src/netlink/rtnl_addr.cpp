// Parsing of rtnetlink address messages (rtnl_addr.hpp), iproute2 style: the
// attributes are indexed by type after each one's length has been checked.
// Pure: no sockets, so it is unit-tested and fuzzed on its own.
#include <tunnel/rtnl_addr.hpp>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace tunnel::rtnl {
namespace ip = boost::asio::ip;
namespace {

struct AddrAttrs {
  std::array<const nlattr*, IFA_MAX + 1> tb{};
};

int addr_attr_cb(const nlattr* attr, void* data) {
  const int type = mnl_attr_get_type(attr);
  if (type <= 0 || type > IFA_MAX) return MNL_CB_OK;  // unknown: skip
  static_cast<AddrAttrs*>(data)->tb[type] = attr;
  return MNL_CB_OK;
}

}  // namespace

std::optional<ip::address> parse_global_address(const nlmsghdr* nlh, int ifindex, int family) {
  if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(ifaddrmsg)) return std::nullopt;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != family || static_cast<int>(ifa->ifa_index) != ifindex ||
      ifa->ifa_scope != RT_SCOPE_UNIVERSE)
    return std::nullopt;
  AddrAttrs a;
  if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), addr_attr_cb, &a) != MNL_CB_OK) return std::nullopt;
  // IFA_LOCAL is the local address where it differs from IFA_ADDRESS (a
  // point-to-point peer); IPv6 sends only IFA_ADDRESS.
  const nlattr* at = a.tb[IFA_LOCAL] ? a.tb[IFA_LOCAL] : a.tb[IFA_ADDRESS];
  if (!at) return std::nullopt;
  const std::size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (want == 0 || mnl_attr_get_payload_len(at) != want) return std::nullopt;
  if (family == AF_INET) {
    ip::address_v4::bytes_type b;
    std::memcpy(b.data(), mnl_attr_get_payload(at), 4);
    return ip::address_v4(b);
  }
  ip::address_v6::bytes_type b;
  std::memcpy(b.data(), mnl_attr_get_payload(at), 16);
  return ip::address_v6(b);
}

}  // namespace tunnel::rtnl
