// A TUN device opened with IFF_TUN | IFF_NO_PI: each read() returns one IP
// packet, each write() injects one. The fd is non-blocking.
#pragma once

#include <tunnel/address.hpp>

#include <string>
#include <vector>

namespace tunnel {

struct TunConfig {
  std::string name;               // e.g. "ha0"; at most IFNAMSIZ-1 bytes
  unsigned mtu = 1500;
  std::vector<Prefix> addresses;  // added to the device if not there yet
  // IFF_VNET_HDR: every read and write starts with a 10-byte virtio_net_hdr.
  // Reads stay plain packets (no offloads are enabled for them); writes may
  // then be UDP GSO packets (see udp_gso.hpp).
  bool vnet_hdr = false;
};

class TunDevice {
 public:
  // Creates the device, or attaches to an existing persistent one of that
  // name, then sets MTU and addresses and brings it up. Throws
  // std::system_error naming the step that failed.
  explicit TunDevice(const TunConfig& cfg);
  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  unsigned mtu() const { return mtu_; }
  // True when the device existed before (persistent); it then outlives us.
  bool attached_existing() const { return existed_; }

 private:
  int fd_ = -1;
  std::string name_;
  int ifindex_ = 0;
  unsigned mtu_ = 0;
  bool existed_ = false;
};

}  // namespace tunnel
