#include <tunnel/udp_gso.hpp>

#include "inet.hpp"

#include <cstring>

namespace tunnel::gso {
namespace inet = wire::inet;
namespace {

constexpr std::size_t kMaxPacket = 65535;
constexpr std::size_t kUdpHdr = 8;
using inet::be16;
using inet::fold;
using inet::put16;
using inet::sum16;

// Layout facts of a packet the coalescer may take; 0 when it may not.
std::size_t udp_header_offset(std::span<const std::uint8_t> p) {
  if (p.size() < 20) return 0;
  if ((p[0] >> 4) == 4) {
    if ((p[0] & 0x0f) != 5 || p[9] != 17 || p.size() < 28) return 0;
    if ((be16(&p[6]) & 0x3fff) != 0) return 0;          // MF or fragment offset
    if (be16(&p[20 + 6]) == 0) return 0;                 // no UDP checksum: keep as is
    return 20;
  }
  if ((p[0] >> 4) == 6 && p.size() >= 48 && p[6] == 17) return 40;
  return 0;
}

}  // namespace

UdpCoalescer::UdpCoalescer() : buf_(std::make_unique<std::uint8_t[]>(kMaxPacket)) {}

bool UdpCoalescer::compatible(std::span<const std::uint8_t> p) const {
  const std::span<const std::uint8_t> f = first_;
  if (udp_header_offset(p) != iphl_ || short_tail_ || count_ >= kMaxSegments) return false;
  const std::size_t payload = p.size() - iphl_ - kUdpHdr;
  if (payload == 0 || payload > seg_ || len_ + payload > kMaxPacket) return false;
  if (be16(&p[iphl_ + 4]) != payload + kUdpHdr) return false;  // UDP length agrees with IP
  if (std::memcmp(&p[iphl_], &f[iphl_], 4) != 0) return false;  // ports
  if (iphl_ == 20) {
    return p[1] == f[1] && p[8] == f[8] && (p[6] & 0x40) == (f[6] & 0x40) &&  // TOS, TTL, DF
           std::memcmp(&p[12], &f[12], 8) == 0 &&                               // addresses
           be16(&p[4]) == static_cast<std::uint16_t>(be16(&f[4]) + count_);     // consecutive ID
  }
  return std::memcmp(&p[0], &f[0], 4) == 0 && p[7] == f[7] &&  // class/flow label, hop limit
         std::memcmp(&p[8], &f[8], 32) == 0;                    // addresses
}

void UdpCoalescer::append_payload(std::span<const std::uint8_t> p) {
  const std::size_t payload = p.size() - iphl_ - kUdpHdr;
  std::memcpy(&buf_[len_], &p[iphl_ + kUdpHdr], payload);
  len_ += payload;
  short_tail_ = payload < seg_;
  ++count_;
}

bool UdpCoalescer::add(std::span<const std::uint8_t> p) {
  if (count_ == 0) {
    first_ = p;
    count_ = 1;
    iphl_ = udp_header_offset(p);
    seg_ = iphl_ ? p.size() - iphl_ - kUdpHdr : 0;
    short_tail_ = iphl_ == 0 || seg_ == 0 || be16(&p[iphl_ + 4]) != seg_ + kUdpHdr;  // not coalescible
    len_ = 0;
    return true;
  }
  if (!compatible(p)) return false;
  if (count_ == 1) {  // the second packet: now copy the first, and compare with the copy from here on
    std::memcpy(buf_.get(), first_.data(), first_.size());
    len_ = first_.size();
    first_ = {buf_.get(), len_};
  }
  append_payload(p);
  return true;
}

void UdpCoalescer::emit(iovec iov[2]) {
  hdr_ = VnetHdr{};
  if (count_ <= 1) {
    iov[1] = {const_cast<std::uint8_t*>(first_.data()), first_.size()};
  } else {
    std::uint8_t* p = buf_.get();
    const std::size_t udp_len = len_ - iphl_;
    if (iphl_ == 20) {
      put16(&p[2], len_);
      put16(&p[10], inet::ipv4_header_checksum(p));
    } else {
      put16(&p[4], udp_len);
    }
    put16(&p[iphl_ + 4], udp_len);
    // Partial checksum: the pseudo-header sum, which segmentation completes
    // per segment. IPv4: addresses at 12..19; IPv6: at 8..39.
    std::uint32_t acc = iphl_ == 20 ? sum16(&p[12], 8) : sum16(&p[8], 32);
    acc += 17 + static_cast<std::uint32_t>(udp_len);
    put16(&p[iphl_ + 6], fold(acc));
    hdr_.flags = kNeedsCsum;
    hdr_.gso_type = kGsoUdpL4;
    hdr_.hdr_len = static_cast<std::uint16_t>(iphl_ + kUdpHdr);
    hdr_.gso_size = static_cast<std::uint16_t>(seg_);
    hdr_.csum_start = static_cast<std::uint16_t>(iphl_);
    hdr_.csum_offset = 6;
    iov[1] = {p, len_};
  }
  iov[0] = {&hdr_, sizeof hdr_};
  count_ = 0;
  first_ = {};
}

}  // namespace tunnel::gso
