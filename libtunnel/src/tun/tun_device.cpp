#include <tunnel/rtnl.hpp>
#include <tunnel/tun_device.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace tunnel {

TunDevice::TunDevice(const TunConfig& cfg) : name_(cfg.name), mtu_(cfg.mtu) {
  if (cfg.name.empty() || cfg.name.size() >= IFNAMSIZ)
    throw std::system_error(EINVAL, std::generic_category(),
                            "TUN name '" + cfg.name + "' must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes");
  existed_ = if_nametoindex(cfg.name.c_str()) != 0;

  fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            err == ENOENT ? "kernel has no TUN support (/dev/net/tun missing, CONFIG_TUN)"
                                          : "open /dev/net/tun");
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (cfg.vnet_hdr ? IFF_VNET_HDR : 0);
  std::memcpy(ifr.ifr_name, cfg.name.data(), cfg.name.size());
  if (::ioctl(fd_, TUNSETIFF, &ifr) < 0) {
    const int err = errno;
    ::close(fd_);
    throw std::system_error(err, std::generic_category(),
                            "TUNSETIFF " + cfg.name + (existed_ ? " (an interface of that name exists and is not a free TUN)" : ""));
  }
  if (cfg.vnet_hdr) {
    int sz = 10;  // sizeof(struct virtio_net_hdr)
    if (::ioctl(fd_, TUNSETVNETHDRSZ, &sz) < 0 || ::ioctl(fd_, TUNSETOFFLOAD, 0) < 0) {
      const int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::generic_category(), "TUN " + cfg.name + ": set up virtio-net header");
    }
  }
  try {
    ifindex_ = rtnl::ifindex(cfg.name);
    rtnl::set_mtu_and_up(ifindex_, cfg.mtu);
    for (const Prefix& p : cfg.addresses) rtnl::add_address(ifindex_, p);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

TunDevice::~TunDevice() {
  if (fd_ >= 0) ::close(fd_);  // a non-persistent device disappears here
}

}  // namespace tunnel
