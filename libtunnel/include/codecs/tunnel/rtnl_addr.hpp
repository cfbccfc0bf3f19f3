// The one rtnetlink parser the address lookups of rtnl.hpp need, apart from
// the libnl calls so that it is unit-tested and fuzzed on its own. Pure.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <linux/netlink.h>

#include <optional>

namespace tunnel::rtnl {

// The address an RTM_NEWADDR message `nlh` carries when it is for link
// `ifindex`, of `family` (AF_INET/AF_INET6), with global scope: IFA_LOCAL,
// else IFA_ADDRESS. nullopt for any other message, and for a malformed one
// (lengths are checked before use).
std::optional<boost::asio::ip::address> parse_global_address(const nlmsghdr* nlh, int ifindex, int family);

}  // namespace tunnel::rtnl
