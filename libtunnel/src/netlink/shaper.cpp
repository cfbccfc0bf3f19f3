#include <tunnel/shaper.hpp>

#include <linux/pkt_sched.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tunnel::shaper {
namespace {

constexpr std::uint32_t kRoot = TC_H_MAKE(1U << 16, 0);
constexpr std::uint32_t kInner = TC_H_MAKE(1U << 16, 1);
constexpr std::uint32_t kBulk = TC_H_MAKE(1U << 16, 0x20);
static_assert(kRealtimePriority == TC_H_MAKE(1U << 16, 0x10));

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct QdiscDeleter {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct ClassDeleter {
  void operator()(rtnl_class* c) const { rtnl_class_put(c); }
};
struct ClsDeleter {
  void operator()(rtnl_cls* c) const { rtnl_cls_put(c); }
};
using Sock = std::unique_ptr<nl_sock, SockDeleter>;

Sock connect_route() {
  Sock s(nl_socket_alloc());
  if (!s) throw std::system_error(ENOMEM, std::generic_category(), "rtnetlink: allocate socket");
  if (const int err = nl_connect(s.get(), NETLINK_ROUTE); err < 0)
    throw std::runtime_error(std::string("rtnetlink: connect: ") + nl_geterror(err));
  return s;
}

void check(int err, const char* what, int ifindex) {
  if (err < 0)
    throw std::runtime_error("shaping ifindex " + std::to_string(ifindex) + ": " + what + ": " + nl_geterror(err));
}

// An htb class `id` under `parent`: `rate` guaranteed, up to `ceil`, served
// in `prio` order (0 first) when classes borrow. Rates in bytes per second.
void add_class(nl_sock* s, int ifindex, std::uint32_t parent, std::uint32_t id, std::uint64_t rate,
               std::uint64_t ceil, std::uint32_t prio) {
  std::unique_ptr<rtnl_class, ClassDeleter> c(rtnl_class_alloc());
  if (!c) throw std::system_error(ENOMEM, std::generic_category(), "rtnetlink: allocate class");
  auto* tc = TC_CAST(c.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_tc_set_handle(tc, id);
  check(rtnl_tc_set_kind(tc, "htb"), "class kind", ifindex);
  check(rtnl_htb_set_rate64(c.get(), rate), "class rate", ifindex);
  check(rtnl_htb_set_ceil64(c.get(), ceil), "class ceil", ifindex);
  check(rtnl_htb_set_prio(c.get(), prio), "class prio", ifindex);
  // Buckets of about 4 ms at the ceiling (at least two full frames): the
  // qdisc's timer, late on a busy host, then catches up instead of losing
  // the line's rate; the line's buffer sees bursts of at most that.
  const auto bucket = static_cast<std::uint32_t>(std::max<std::uint64_t>(2 * 1514, std::min<std::uint64_t>(ceil / 250, 1U << 24)));
  check(rtnl_htb_set_rbuffer(c.get(), bucket), "class burst", ifindex);
  check(rtnl_htb_set_cbuffer(c.get(), bucket), "class ceiling burst", ifindex);
  check(rtnl_class_add(s, c.get(), NLM_F_CREATE | NLM_F_REPLACE), "add class", ifindex);
}

// Puts an htb root (1:) on `ifindex` in place of whatever root it had,
// unclassified packets to `default_class` (0: the direct queue, unshaped).
// The old root goes first, so no class of it survives.
void add_root(nl_sock* s, int ifindex, std::uint32_t default_class) {
  std::unique_ptr<rtnl_qdisc, QdiscDeleter> q(rtnl_qdisc_alloc());
  if (!q) throw std::system_error(ENOMEM, std::generic_category(), "rtnetlink: allocate qdisc");
  auto* tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, TC_H_ROOT);
  rtnl_tc_set_handle(tc, kRoot);
  check(rtnl_tc_set_kind(tc, "htb"), "qdisc kind", ifindex);
  check(rtnl_htb_set_defcls(q.get(), default_class), "default class", ifindex);
  remove(ifindex);
  check(rtnl_qdisc_add(s, q.get(), NLM_F_CREATE | NLM_F_REPLACE), "add root qdisc", ifindex);
}

// The three classes of one shaped direction: `inner` at `bytes` per second
// under the root, and under it the realtime leaf `rt` (served first) and
// the bulk leaf `bulk`, each guaranteed half and free to take all.
void add_classes(nl_sock* s, int ifindex, std::uint32_t inner, std::uint32_t rt, std::uint32_t bulk,
                 std::uint64_t bytes) {
  add_class(s, ifindex, kRoot, inner, bytes, bytes, 0);
  add_class(s, ifindex, inner, rt, bytes / 2, bytes, 0);
  add_class(s, ifindex, inner, bulk, bytes / 2, bytes, 1);
}

std::uint32_t minor(unsigned slot, unsigned k) { return TC_H_MAKE(1U << 16, 3 * slot + k); }

// The u32 filter of `slot` (priority `slot`): packets to `dst` go to its
// bulk leaf. With `add` false, only what identifies it for deletion is set.
std::unique_ptr<rtnl_cls, ClsDeleter> slot_filter(int ifindex, unsigned slot, const boost::asio::ip::address& dst,
                                                   bool add) {
  std::unique_ptr<rtnl_cls, ClsDeleter> c(rtnl_cls_alloc());
  if (!c) throw std::system_error(ENOMEM, std::generic_category(), "rtnetlink: allocate filter");
  auto* tc = TC_CAST(c.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, kRoot);
  rtnl_cls_set_prio(c.get(), static_cast<std::uint16_t>(slot));
  rtnl_cls_set_protocol(c.get(), dst.is_v4() ? ETH_P_IP : ETH_P_IPV6);
  check(rtnl_tc_set_kind(tc, "u32"), "filter kind", ifindex);
  if (!add) return c;
  if (dst.is_v4()) {
    in_addr a{};
    const auto b = dst.to_v4().to_bytes();
    std::memcpy(&a, b.data(), sizeof a);
    check(rtnl_u32_add_key_in_addr(c.get(), &a, 32, 16, 0), "filter key", ifindex);  // IPv4 destination
  } else {
    in6_addr a{};
    const auto b = dst.to_v6().to_bytes();
    std::memcpy(&a, b.data(), sizeof a);
    check(rtnl_u32_add_key_in6_addr(c.get(), &a, 128, 24, 0), "filter key", ifindex);  // IPv6 destination
  }
  check(rtnl_u32_set_classid(c.get(), minor(slot, 2)), "filter class", ifindex);
  check(rtnl_u32_set_cls_terminal(c.get()), "filter terminal", ifindex);
  return c;
}

}  // namespace

void install(int ifindex, std::uint64_t rate_bps) {
  if (rate_bps < 8000 || rate_bps > 32'000'000'000ULL)
    throw std::runtime_error("shaping ifindex " + std::to_string(ifindex) + ": rate out of range");
  const Sock s = connect_route();
  add_root(s.get(), ifindex, kBulk);
  add_classes(s.get(), ifindex, kInner, kRealtimePriority, kBulk, rate_bps / 8);
}

bool remove(int ifindex) noexcept {
  try {
    const Sock s = connect_route();
    std::unique_ptr<rtnl_qdisc, QdiscDeleter> q(rtnl_qdisc_alloc());
    if (!q) return false;
    rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
    rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(q.get()), kRoot);
    return rtnl_qdisc_delete(s.get(), q.get()) >= 0;
  } catch (...) {
    return false;
  }
}

DownlinkShaper::DownlinkShaper(std::vector<int> ifindexes) : used_(kMaxSlots + 1, false) {
  const Sock s = connect_route();
  for (const int ifindex : ifindexes) {
    try {
      add_root(s.get(), ifindex, 0);  // unclassified: direct, unshaped
    } catch (...) {
      for (const int i : ifindexes_) remove(i);
      throw;
    }
    ifindexes_.push_back(ifindex);
  }
}

DownlinkShaper::~DownlinkShaper() {
  for (const int i : ifindexes_) remove(i);
}

std::uint32_t DownlinkShaper::add(const boost::asio::ip::address& dst, std::uint64_t rate_bps, std::string& error) {
  if (auto it = slots_.find(dst); it != slots_.end()) {
    ++it->second.refs;
    return minor(it->second.slot, 1);
  }
  if (rate_bps < 8000 || rate_bps > 32'000'000'000ULL) {
    error = "rate out of range";
    return 0;
  }
  unsigned slot = 1;
  while (slot <= kMaxSlots && used_[slot]) ++slot;
  if (slot > kMaxSlots) {
    error = "every slot is in use";
    return 0;
  }
  try {
    const Sock s = connect_route();
    const std::uint64_t bytes = rate_bps / 8;
    for (const int ifindex : ifindexes_) {
      add_classes(s.get(), ifindex, minor(slot, 0), minor(slot, 1), minor(slot, 2), bytes);
      const auto f = slot_filter(ifindex, slot, dst, true);
      check(rtnl_cls_add(s.get(), f.get(), NLM_F_CREATE | NLM_F_EXCL), "add filter", ifindex);
    }
  } catch (const std::exception& e) {
    error = e.what();
    remove_slot(dst, slot);
    return 0;
  }
  used_[slot] = true;
  slots_[dst] = Slot{slot, 1};
  return minor(slot, 1);
}

void DownlinkShaper::release(const boost::asio::ip::address& dst) {
  auto it = slots_.find(dst);
  if (it == slots_.end() || --it->second.refs > 0) return;
  remove_slot(dst, it->second.slot);
  used_[it->second.slot] = false;
  slots_.erase(it);
}

void DownlinkShaper::remove_slot(const boost::asio::ip::address& dst, unsigned slot) noexcept {
  try {
    const Sock s = connect_route();
    for (const int ifindex : ifindexes_) {
      const auto f = slot_filter(ifindex, slot, dst, false);
      rtnl_cls_delete(s.get(), f.get(), 0);
      for (unsigned k : {1U, 2U, 0U}) {  // leaves before their parent
        std::unique_ptr<rtnl_class, ClassDeleter> c(rtnl_class_alloc());
        if (!c) return;
        rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
        rtnl_tc_set_handle(TC_CAST(c.get()), minor(slot, k));
        rtnl_class_delete(s.get(), c.get());
      }
    }
  } catch (...) {
  }
}

}  // namespace tunnel::shaper
