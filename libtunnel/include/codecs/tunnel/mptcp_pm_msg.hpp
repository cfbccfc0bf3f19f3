// Messages of the MPTCP in-kernel path manager (generic netlink family
// "mptcp_pm") as plain values, and the free functions that build requests
// into caller buffers and parse replies and events, so that they can be
// tested against recorded kernel messages and fuzzed. Pure: no sockets
// (mptcp_pm.hpp adds those).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tunnel::netlink {

struct Endpoint {
  std::uint8_t id = 0;  // 0: let the kernel choose
  boost::asio::ip::address addr;
  std::uint16_t port = 0;
  std::uint32_t flags = 0;  // uapi::PmAddrFlag bits
  int ifindex = 0;
  bool operator==(const Endpoint&) const = default;
};

struct PmLimits {
  std::uint32_t subflows = 0;
  std::uint32_t add_addr_accepted = 0;
  bool operator==(const PmLimits&) const = default;
};

// A path-manager event from the mptcp_pm_events multicast group.
struct PmEventMsg {
  std::uint8_t type = 0;  // uapi::PmEvent
  std::uint32_t token = 0;
  std::optional<boost::asio::ip::address> saddr, daddr;
  std::uint16_t sport = 0, dport = 0;
  std::uint8_t loc_id = 0, rem_id = 0;
  int ifindex = 0;
  std::uint8_t error = 0;
  bool backup = false;
};

std::string endpoint_flags_to_string(std::uint32_t flags);

// ---- message building: each writes one request into `buf` (at least
// 1024 bytes, aligned for nlmsghdr) and returns its header. ----
nlmsghdr* build_get_family(void* buf, std::uint32_t seq, const char* family_name);
nlmsghdr* build_add_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, const Endpoint& ep);
nlmsghdr* build_del_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, std::uint8_t id);
nlmsghdr* build_get_addr_dump(void* buf, std::uint16_t family_id, std::uint32_t seq);
nlmsghdr* build_get_limits(void* buf, std::uint16_t family_id, std::uint32_t seq);
nlmsghdr* build_set_limits(void* buf, std::uint16_t family_id, std::uint32_t seq, const PmLimits& l);

// ---- parsing: each validates every attribute's length before use and
// returns nullopt for a message that does not carry what it should. ----
struct FamilyInfo {
  std::uint16_t id = 0;
  std::optional<std::uint32_t> events_group;
};
std::optional<FamilyInfo> parse_family(const nlmsghdr* nlh, const char* group_name);
std::optional<Endpoint> parse_endpoint(const nlmsghdr* nlh);
std::optional<PmLimits> parse_limits(const nlmsghdr* nlh);
std::optional<PmEventMsg> parse_event(const nlmsghdr* nlh);

}  // namespace tunnel::netlink
