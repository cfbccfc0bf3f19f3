// Links and addresses over rtnetlink (libnl-route; libmnl for the address
// dump). Start-up and shutdown only; every function throws
// std::runtime_error (or std::system_error) naming what failed. The address
// dump's parser is rtnl_addr.hpp.
#pragma once

#include <tunnel/address.hpp>

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>

namespace tunnel::rtnl {

// Index of interface `name`; throws when there is none.
int ifindex(const std::string& name);

// The first global-scope address of `family` (AF_INET/AF_INET6) on the link,
// in the kernel's order (the primary address). nullopt when there is none.
std::optional<boost::asio::ip::address> primary_address(int ifindex, int family);

// Sets the link's MTU and brings it up.
void set_mtu_and_up(int ifindex, unsigned mtu);

// Adds `prefix` to the link; an address that is already there is fine.
void add_address(int ifindex, const Prefix& prefix);

}  // namespace tunnel::rtnl
