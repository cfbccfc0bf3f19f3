// Egress shaping of a WAN interface, so that the queue forms on this host,
// where realtime goes first, and not in the line's own buffer, where it
// waits behind bulk. The interface gets an htb root (handle 1:) whose one
// inner class (1:1) holds the egress at `rate_bps`, just below the line's
// rate, with two leaves: realtime (1:10, served first) and bulk (1:20, the
// default for every packet not marked). A socket sends on the realtime leaf
// when its SO_PRIORITY is kRealtimePriority: htb takes skb->priority as a
// class id before it consults any filter, so no filter is needed.
//
// TCP small queues keep each connection's share of the bulk leaf to about a
// millisecond of data, so bulk still fills the line (at `rate_bps`) without
// a standing queue.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tunnel::shaper {

// The share of a line's rate its direction is shaped to, in permille: close
// enough to the rate that bulk keeps most of the line, far enough below it
// that the line's own buffer stays empty.
inline constexpr std::uint64_t kShapePermille = 980;

// SO_PRIORITY for sockets whose packets take the realtime leaf (1:10).
inline constexpr std::uint32_t kRealtimePriority = 0x00010010;

// Installs the root on interface `ifindex` in place of whatever root qdisc
// it has (`tc qdisc replace`), shaped to `rate_bps` (bits per second, at
// least 8000, at most 32 Gbit/s: htb's 32-bit rates are bytes per second).
// Throws std::runtime_error naming what failed.
void install(int ifindex, std::uint64_t rate_bps);

// Removes the root qdisc of `ifindex` (the kernel's default comes back).
// Returns false when the kernel refused (e.g. the interface is gone).
bool remove(int ifindex) noexcept;


// The gateway's downlink shaping (--shape-downlink IFACE): the same
// structure per CPE path on each interface toward the CPEs (the same classes
// on each: a path's packets leave through one of them). The root
// (1:) sends unclassified packets unshaped (htb's direct queue: there is no
// default class). Each shaped path gets a slot s (1..kMaxSlots): an inner
// class 1:3s at the path's rate, a realtime leaf 1:(3s+1), served first,
// and a bulk leaf 1:(3s+2), which a u32 filter (its own priority s) fills
// with every packet to the path's address. The realtime link of the path
// takes the realtime leaf with SO_PRIORITY = the value add() returns.
// Paths behind one address (CPEs behind one NAT) share its slot, at the
// rate the first one announced. Classification is linear in the number of
// shaped addresses.
class DownlinkShaper {
 public:
  static constexpr unsigned kMaxSlots = 4095;

  // Installs the root on each of `ifindexes`, replacing their root qdiscs.
  // Throws std::runtime_error (what was installed is removed).
  explicit DownlinkShaper(std::vector<int> ifindexes);
  // Removes the roots, and with them every class and filter.
  ~DownlinkShaper();
  DownlinkShaper(const DownlinkShaper&) = delete;
  DownlinkShaper& operator=(const DownlinkShaper&) = delete;

  // Shapes packets to `dst` at `rate_bps` (or joins the slot `dst` has).
  // Returns the SO_PRIORITY of its realtime leaf; 0 with `error` set when
  // no slot is free or the kernel refused.
  std::uint32_t add(const boost::asio::ip::address& dst, std::uint64_t rate_bps, std::string& error);
  // Drops one reference to `dst`'s slot; the last one removes its classes
  // and filter.
  void release(const boost::asio::ip::address& dst);
  std::size_t shaped() const { return slots_.size(); }

 private:
  struct Slot {
    unsigned slot = 0;
    unsigned refs = 0;
  };
  void remove_slot(const boost::asio::ip::address& dst, unsigned slot) noexcept;

  std::vector<int> ifindexes_;
  std::map<boost::asio::ip::address, Slot> slots_;
  std::vector<bool> used_;  // by slot number
};

}  // namespace tunnel::shaper
