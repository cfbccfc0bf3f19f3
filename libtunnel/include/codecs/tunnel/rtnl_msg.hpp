// rtnetlink link and address messages (RTM_NEWLINK/DELLINK,
// RTM_NEWADDR/DELADDR) as plain values, and the requests that dump them.
// Parsing validates every attribute's length before use (iproute2 style) and
// never allocates more than the interface name.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>

namespace tunnel::netlink {

struct LinkMsg {
  bool removed = false;  // RTM_DELLINK
  int ifindex = 0;
  std::string name;      // IFLA_IFNAME; empty when the message had none
  unsigned flags = 0;    // IFF_* from ifinfomsg (IFF_UP, IFF_RUNNING, IFF_LOWER_UP...)
  bool operator==(const LinkMsg&) const = default;
};

struct AddrMsg {
  bool removed = false;  // RTM_DELADDR
  int ifindex = 0;
  // The local address: IFA_LOCAL when present (on point-to-point links such
  // as PPP, IFA_ADDRESS is the peer's), else IFA_ADDRESS.
  boost::asio::ip::address addr;
  std::uint8_t prefixlen = 0;
  std::uint8_t scope = 0;     // RT_SCOPE_*
  std::uint32_t flags = 0;    // IFA_F_*: the IFA_FLAGS attribute when present, else ifa_flags
  bool operator==(const AddrMsg&) const = default;
};

// nullopt for a message that is not RTM_NEWLINK/RTM_DELLINK, or is malformed
// (short header, an attribute shorter than its type requires).
std::optional<LinkMsg> parse_link(const nlmsghdr* nlh);
// nullopt for a message that is not RTM_NEWADDR/RTM_DELADDR, has a family
// other than AF_INET/AF_INET6, carries no address, or is malformed.
std::optional<AddrMsg> parse_addr(const nlmsghdr* nlh);

// Dump requests (NLM_F_REQUEST | NLM_F_DUMP) for every link, and for every
// address of both families. `buf` must hold 64 bytes, aligned for nlmsghdr.
nlmsghdr* build_link_dump(void* buf, std::uint32_t seq);
nlmsghdr* build_addr_dump(void* buf, std::uint32_t seq);

// The messages the kernel sends for `m`, for tests and fakes. `buf` must hold
// 256 bytes, aligned for nlmsghdr.
nlmsghdr* build_link_msg(void* buf, const LinkMsg& m);
nlmsghdr* build_addr_msg(void* buf, const AddrMsg& m);

}  // namespace tunnel::netlink
