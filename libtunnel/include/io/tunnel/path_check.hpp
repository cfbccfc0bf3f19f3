// Start-up validation of a --path interface name. An interface that does not
// exist yet is fine: the path waits for it.
//
// Facts come from ioctls in the caller's network namespace (SIOCGIFFLAGS,
// SIOCGIFINDEX, SIOCGIFHWADDR, and SIOCETHTOOL's driver name), or, when a
// sysfs directory is given, from its files (tests use a fake one; /sys shows
// the namespace it was mounted in, not necessarily the caller's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tunnel {

enum class InterfaceKind : std::uint8_t {
  absent,    // no such interface now
  loopback,  // IFF_LOOPBACK
  tun,       // the tun driver in TUN (layer 3) mode: sysfs tun_flags has IFF_TUN
  tap,       // the tun driver in TAP (Ethernet) mode
  other,     // anything else, including raw-IP modems (qmi_wwan: ARPHRD_NONE like a TUN)
};
const char* to_string(InterfaceKind k);

// What interface `name` is. A TUN is told by its driver (ethtool driver name
// "tun"; in sysfs, the tun driver's `tun_flags` file), not by the link type.
InterfaceKind interface_kind(const std::string& name);
// The same from a sysfs tree: `sysfs_net` holds one directory per interface.
InterfaceKind interface_kind(const std::string& name, const std::string& sysfs_net);

enum class PathRefusal : std::uint8_t {
  bad_name,  // empty, longer than IFNAMSIZ - 1, or containing '/' or whitespace
  loopback,
  own_tun,   // the tunnel's own TUN device (by name, or a TUN with its ifindex)
};
const char* to_string(PathRefusal r);

// Why `name` cannot be a --path, or nullopt when it can (absent included).
// `own_tun` is the name of the TUN device this daemon carries packets on;
// `own_tun_ifindex` its index once it exists (0: not known).
std::optional<PathRefusal> check_path(const std::string& name, const std::string& own_tun, int own_tun_ifindex = 0);
std::optional<PathRefusal> check_path(const std::string& name, const std::string& own_tun, int own_tun_ifindex,
                                      const std::string& sysfs_net);

// One line for the user: "--path lo: the loopback cannot carry a path".
std::string refusal_message(const std::string& name, PathRefusal r);

}  // namespace tunnel
