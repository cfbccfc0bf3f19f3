// Coalescing of consecutive UDP datagrams of one flow into a single UDP GSO
// packet for a TUN opened with IFF_VNET_HDR, so the receiving kernel routes,
// filters and forwards one packet where it would handle up to 64, and splits
// it only at the end (into exactly the original datagrams).
//
// Pure: no I/O. A batch holds packets that the kernel's segmentation will
// reproduce byte for byte: same addresses, ports, TOS/traffic class, TTL/hop
// limit, DF; IPv4 without options or fragmentation and with consecutive IDs
// and a non-zero UDP checksum; IPv6 with UDP as the first next header; every
// payload the size of the first except a shorter last one.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace tunnel::gso {

// struct virtio_net_hdr (little-endian on the TUN: x86 and arm are).
struct VnetHdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10);
inline constexpr std::uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kGsoNone = 0;
inline constexpr std::uint8_t kGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (kernel 6.2+)
inline constexpr std::size_t kMaxSegments = 64;

class UdpCoalescer {
 public:
  UdpCoalescer();

  // Offers one well-formed IP packet. It must stay valid until the next add()
  // or emit(): the first packet of a batch is held uncopied until a second
  // joins, then copied; no other packet is read after its add().
  // Returns false when it cannot join the pending batch: the caller emits the
  // batch and offers the packet again (an empty coalescer takes anything).
  bool add(std::span<const std::uint8_t> pkt);
  bool empty() const { return count_ == 0; }
  std::size_t count() const { return count_; }

  // Fills iov[0..1] with the vnet header and the packet to write (the original
  // packet when the batch holds one, the GSO packet otherwise) and resets.
  // The iovecs stay valid until the next add().
  void emit(iovec iov[2]);

 private:
  bool compatible(std::span<const std::uint8_t> pkt) const;
  void append_payload(std::span<const std::uint8_t> pkt);

  std::unique_ptr<std::uint8_t[]> buf_;  // the GSO packet under construction
  std::span<const std::uint8_t> first_;  // the first packet: the caller's until a second joins, then buf_
  VnetHdr hdr_{};
  std::size_t count_ = 0;
  std::size_t len_ = 0;        // bytes in buf_
  std::size_t iphl_ = 0;
  std::size_t seg_ = 0;        // UDP payload size of the first packet
  bool short_tail_ = false;    // a shorter payload ended the batch
};

}  // namespace tunnel::gso
