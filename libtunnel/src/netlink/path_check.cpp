#include <tunnel/path_check.hpp>

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
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

// What both sources tell.
struct Facts {
  InterfaceKind kind = InterfaceKind::absent;
  int ifindex = 0;
};

Facts facts_sysfs(const std::string& name, const std::string& sysfs_net) {
  Facts f;
  const std::string dir = sysfs_net + "/" + name;
  if (!valid_name(name) || !exists(dir)) return f;
  f.kind = InterfaceKind::other;
  if (const auto idx = read_number(dir + "/ifindex")) f.ifindex = static_cast<int>(*idx);
  if (const auto flags = read_number(dir + "/flags"); flags && (*flags & IFF_LOOPBACK)) {
    f.kind = InterfaceKind::loopback;
  } else if (const auto tf = read_number(dir + "/tun_flags")) {
    if (*tf & kIffTun) f.kind = InterfaceKind::tun;
    else if (*tf & kIffTap) f.kind = InterfaceKind::tap;
  }
  return f;
}

Facts facts_ioctl(const std::string& name) {
  Facts f;
  if (!valid_name(name)) return f;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return f;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, SIOCGIFINDEX, &ifr) == 0) {
    f.kind = InterfaceKind::other;
    f.ifindex = ifr.ifr_ifindex;
    if (::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK)) {
      f.kind = InterfaceKind::loopback;
    } else {
      ethtool_drvinfo info{};
      info.cmd = ETHTOOL_GDRVINFO;
      ifr.ifr_data = reinterpret_cast<char*>(&info);
      if (::ioctl(fd, SIOCETHTOOL, &ifr) == 0 && std::strncmp(info.driver, "tun", sizeof info.driver) == 0) {
        // The tun driver: TUN mode has no link-layer header, TAP mode is Ethernet.
        f.kind = (::ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER)
                     ? InterfaceKind::tap
                     : InterfaceKind::tun;
      }
    }
  }
  ::close(fd);
  return f;
}

std::optional<PathRefusal> check(const std::string& name, const std::string& own_tun, int own_tun_ifindex,
                                 const Facts& f) {
  if (!valid_name(name)) return PathRefusal::bad_name;
  if (name == own_tun) return PathRefusal::own_tun;
  if (f.kind == InterfaceKind::loopback) return PathRefusal::loopback;
  if (f.kind == InterfaceKind::tun && own_tun_ifindex > 0 && f.ifindex == own_tun_ifindex)
    return PathRefusal::own_tun;
  return std::nullopt;
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

InterfaceKind interface_kind(const std::string& name) { return facts_ioctl(name).kind; }

InterfaceKind interface_kind(const std::string& name, const std::string& sysfs_net) {
  return facts_sysfs(name, sysfs_net).kind;
}

std::optional<PathRefusal> check_path(const std::string& name, const std::string& own_tun, int own_tun_ifindex) {
  return check(name, own_tun, own_tun_ifindex, facts_ioctl(name));
}

std::optional<PathRefusal> check_path(const std::string& name, const std::string& own_tun, int own_tun_ifindex,
                                      const std::string& sysfs_net) {
  return check(name, own_tun, own_tun_ifindex, facts_sysfs(name, sysfs_net));
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
