#include <tunnel/path_check.hpp>

#include <net/if.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>

namespace tunnel {
namespace {

constexpr unsigned long kIffTun = 0x0001;  // <linux/if_tun.h> IFF_TUN
constexpr unsigned long kIffTap = 0x0002;  // IFF_TAP

// A sysfs attribute holding one number ("0x1001", "4099"); nullopt when missing.
std::optional<unsigned long> read_number(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s)) return std::nullopt;
  try {
    return std::stoul(s, nullptr, 0);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() >= IFNAMSIZ || n == "." || n == "..") return false;
  for (const char c : n) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

const char* to_string(InterfaceKind k) {
  switch (k) {
    case InterfaceKind::absent: return "absent";
    case InterfaceKind::loopback: return "loopback";
    case InterfaceKind::tun: return "tun";
    case InterfaceKind::tap: return "tap";
    case InterfaceKind::other: return "other";
  }
  return "?";
}

const char* to_string(PathRefusal r) {
  switch (r) {
    case PathRefusal::bad_name: return "bad_name";
    case PathRefusal::loopback: return "loopback";
    case PathRefusal::own_tun: return "own_tun";
  }
  return "?";
}

InterfaceKind interface_kind(const std::string& name, const std::string& sysfs_net) {
  if (!valid_name(name)) return InterfaceKind::absent;
  const std::string dir = sysfs_net + "/" + name;
  if (!exists(dir)) return InterfaceKind::absent;
  if (const auto flags = read_number(dir + "/flags"); flags && (*flags & IFF_LOOPBACK)) return InterfaceKind::loopback;
  if (const auto tf = read_number(dir + "/tun_flags")) {
    if (*tf & kIffTun) return InterfaceKind::tun;
    if (*tf & kIffTap) return InterfaceKind::tap;
  }
  return InterfaceKind::other;
}

std::optional<PathRefusal> check_path(const std::string& name, const std::string& own_tun, int own_tun_ifindex,
                                      const std::string& sysfs_net) {
  if (!valid_name(name)) return PathRefusal::bad_name;
  if (name == own_tun) return PathRefusal::own_tun;
  switch (interface_kind(name, sysfs_net)) {
    case InterfaceKind::loopback: return PathRefusal::loopback;
    case InterfaceKind::tun:
      if (own_tun_ifindex > 0) {
        const auto idx = read_number(sysfs_net + "/" + name + "/ifindex");
        if (idx && static_cast<long>(*idx) == own_tun_ifindex) return PathRefusal::own_tun;
      }
      return std::nullopt;
    default: return std::nullopt;
  }
}

std::string refusal_message(const std::string& name, PathRefusal r) {
  switch (r) {
    case PathRefusal::bad_name: return "--path '" + name + "': not a valid interface name";
    case PathRefusal::loopback: return "--path " + name + ": the loopback cannot carry a path";
    case PathRefusal::own_tun: return "--path " + name + ": that is the tunnel's own TUN device, not a WAN link";
  }
  return "--path " + name + ": refused";
}

}  // namespace tunnel
