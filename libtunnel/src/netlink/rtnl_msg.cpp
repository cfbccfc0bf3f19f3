// Parsing into attribute tables after a length check of each attribute, as
// iproute2's parse_rtattr does.
#include <tunnel/rtnl_msg.hpp>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace tunnel::netlink {
namespace ip = boost::asio::ip;
namespace {

// Minimum payload length per attribute type; 0 = not used here (skipped).
template <std::size_t N>
struct Table {
  std::array<const nlattr*, N + 1> tb{};
  const std::array<std::uint16_t, N + 1>* min_len;
  bool bad = false;
};

template <std::size_t N>
int table_cb(const nlattr* attr, void* data) {
  auto* t = static_cast<Table<N>*>(data);
  const auto type = mnl_attr_get_type(attr);
  if (type > N || (*t->min_len)[type] == 0) return MNL_CB_OK;
  if (mnl_attr_get_payload_len(attr) < (*t->min_len)[type]) {
    t->bad = true;
    return MNL_CB_ERROR;
  }
  t->tb[type] = attr;
  return MNL_CB_OK;
}

constexpr std::array<std::uint16_t, IFLA_IFNAME + 1> kLinkLen = [] {
  std::array<std::uint16_t, IFLA_IFNAME + 1> a{};
  a[IFLA_IFNAME] = 1;
  return a;
}();

constexpr std::array<std::uint16_t, IFA_FLAGS + 1> kAddrLen = [] {
  std::array<std::uint16_t, IFA_FLAGS + 1> a{};
  a[IFA_ADDRESS] = 4;  // checked against the family below
  a[IFA_LOCAL] = 4;
  a[IFA_FLAGS] = 4;
  return a;
}();

std::optional<ip::address> addr_of(const nlattr* a, unsigned char family) {
  if (!a) return std::nullopt;
  if (family == AF_INET && mnl_attr_get_payload_len(a) >= 4) {
    ip::address_v4::bytes_type b;
    std::memcpy(b.data(), mnl_attr_get_payload(a), 4);
    return ip::address_v4(b);
  }
  if (family == AF_INET6 && mnl_attr_get_payload_len(a) >= 16) {
    ip::address_v6::bytes_type b;
    std::memcpy(b.data(), mnl_attr_get_payload(a), 16);
    return ip::address_v6(b);
  }
  return std::nullopt;
}

nlmsghdr* put_dump(void* buf, std::uint16_t type, std::uint32_t seq, std::size_t extra) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  mnl_nlmsg_put_extra_header(nlh, extra);  // zeroed: AF_UNSPEC, every link
  return nlh;
}

}  // namespace

std::optional<LinkMsg> parse_link(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) return std::nullopt;
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(ifinfomsg)) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  Table<IFLA_IFNAME> t{.min_len = &kLinkLen};
  if (mnl_attr_parse(nlh, sizeof(ifinfomsg), table_cb<IFLA_IFNAME>, &t) != MNL_CB_OK || t.bad)
    return std::nullopt;
  LinkMsg m;
  m.removed = nlh->nlmsg_type == RTM_DELLINK;
  m.ifindex = ifi->ifi_index;
  m.flags = ifi->ifi_flags;
  if (const nlattr* n = t.tb[IFLA_IFNAME]) {
    const auto* s = static_cast<const char*>(mnl_attr_get_payload(n));
    m.name.assign(s, strnlen(s, mnl_attr_get_payload_len(n)));
  }
  return m;
}

std::optional<AddrMsg> parse_addr(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR) return std::nullopt;
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(ifaddrmsg)) return std::nullopt;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return std::nullopt;
  Table<IFA_FLAGS> t{.min_len = &kAddrLen};
  if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), table_cb<IFA_FLAGS>, &t) != MNL_CB_OK || t.bad)
    return std::nullopt;
  auto local = addr_of(t.tb[IFA_LOCAL], ifa->ifa_family);
  if (!local) local = addr_of(t.tb[IFA_ADDRESS], ifa->ifa_family);
  if (!local) return std::nullopt;
  AddrMsg m;
  m.removed = nlh->nlmsg_type == RTM_DELADDR;
  m.ifindex = static_cast<int>(ifa->ifa_index);
  m.addr = *local;
  m.prefixlen = ifa->ifa_prefixlen;
  m.scope = ifa->ifa_scope;
  m.flags = t.tb[IFA_FLAGS] ? mnl_attr_get_u32(t.tb[IFA_FLAGS]) : ifa->ifa_flags;
  return m;
}

nlmsghdr* build_link_dump(void* buf, std::uint32_t seq) { return put_dump(buf, RTM_GETLINK, seq, sizeof(ifinfomsg)); }
nlmsghdr* build_addr_dump(void* buf, std::uint32_t seq) { return put_dump(buf, RTM_GETADDR, seq, sizeof(ifaddrmsg)); }

nlmsghdr* build_link_msg(void* buf, const LinkMsg& m) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = m.removed ? RTM_DELLINK : RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = m.ifindex;
  ifi->ifi_flags = m.flags;
  ifi->ifi_change = ~0u;
  if (!m.name.empty()) mnl_attr_put_strz(nlh, IFLA_IFNAME, m.name.substr(0, IFNAMSIZ - 1).c_str());
  return nlh;
}

nlmsghdr* build_addr_msg(void* buf, const AddrMsg& m) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = m.removed ? RTM_DELADDR : RTM_NEWADDR;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = m.addr.is_v4() ? AF_INET : AF_INET6;
  ifa->ifa_prefixlen = m.prefixlen;
  ifa->ifa_flags = static_cast<std::uint8_t>(m.flags);
  ifa->ifa_scope = m.scope;
  ifa->ifa_index = static_cast<std::uint32_t>(m.ifindex);
  if (m.addr.is_v4()) {
    const auto b = m.addr.to_v4().to_bytes();
    mnl_attr_put(nlh, IFA_ADDRESS, 4, b.data());
    mnl_attr_put(nlh, IFA_LOCAL, 4, b.data());
  } else {
    const auto b = m.addr.to_v6().to_bytes();
    mnl_attr_put(nlh, IFA_ADDRESS, 16, b.data());
  }
  mnl_attr_put_u32(nlh, IFA_FLAGS, m.flags);
  return nlh;
}

}  // namespace tunnel::netlink
