// Which realtime link(s) carry a realtime packet, and when each link counts
// as alive (docs/realtime.md). Pure: the caller passes the clock, reports
// link events and probe answers, and does the sending.
//
// A session has up to kMaxLinks realtime links, one plain TCP connection per
// WAN path, indexed by the caller (e.g. the path's index).
//
// Per realtime packet: pick(now) gives the packet's realtime sequence and a
// mask of links to send it on: every live link (redundant) or the live link
// with the lowest smoothed RTT (fastest; another link takes over only when it
// is faster by `switch_margin`). An empty mask means no realtime link is
// live: the caller sends the packet on the bulk link (as RT_DATA) or holds it
// and drops it once older than `max_age` (counted).
//
// Liveness: while realtime is active (a packet was picked within
// `active_for`), each connected link gets a PROBE every `probe_interval`
// (probes_due/probe_sent); nothing is sent while realtime is idle. A link is
// silent, and no longer live, when nothing arrived on it for probe_interval
// + its timeout (srtt + 4 rttvar, within [min_timeout, max_timeout]),
// counted from the later of its last arrival and the start of activity. Any
// arrival makes it live again. link_down() (connection closed, carrier lost)
// takes it out at once.
//
// Failover (fastest): when the link carrying realtime dies, the result says
// from which sequence the packets it was sent may not have arrived (those
// after its last answered probe): the caller resends those still younger
// than max_age on the new link. The receiver's first-copy filter drops
// whatever arrives twice.
#pragma once

#include <tunnel/realtime_wire.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tunnel::realtime {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

enum class Mode : std::uint8_t { redundant, fastest };
std::string_view to_string(Mode m) noexcept;
// "redundant" or "fastest"; false for anything else.
bool parse_mode(std::string_view s, Mode& out) noexcept;

inline constexpr std::size_t kMaxLinks = 8;
using LinkMask = std::uint8_t;  // bit i: link i

struct SchedulerParams {
  Mode mode = Mode::redundant;
  // false: this side sends no probes and declares no link silent (only
  // link_down takes a link out); it still answers the peer's probes. The
  // gateway in redundant mode, so that 10,000 sessions cost it no timers.
  bool prober = true;
  ms probe_interval{50};
  ms active_for{1000};
  ms min_timeout{20};
  ms max_timeout{100};
  ms switch_margin{5};
  ms max_age{150};
};

struct Pick {
  std::uint64_t rseq = 0;
  LinkMask links = 0;
};

// A link the scheduler declared dead (silent or down) and, for the link that
// carried realtime in fastest mode, the packets to resend.
struct Failover {
  LinkMask died = 0;
  bool resend = false;
  std::uint64_t resend_from = 0;  // resend packets with rseq in [resend_from, next_rseq())
};

struct LinkStatus {
  bool connected = false;
  bool live = false;
  bool has_rtt = false;
  std::chrono::microseconds srtt{0}, rttvar{0};
  std::uint64_t probes_sent = 0, probes_answered = 0;
  std::uint64_t deaths = 0;  // times it went from live to silent or down
};

struct SchedulerCounters {
  std::uint64_t picked = 0;
  std::uint64_t copies = 0;        // link sends asked for (redundant: several per packet)
  std::uint64_t no_link = 0;       // packets picked with no live link
  std::uint64_t failovers = 0;     // fastest: the carrying link changed because it died
  std::uint64_t switches = 0;      // fastest: the carrying link changed for a lower RTT
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerParams p = {}) : p_(p) {}

  void link_up(std::size_t i, Clock::time_point now) noexcept;
  Failover link_down(std::size_t i) noexcept;
  // Anything arrived on link i (data, probe, probe ack, heartbeat).
  void on_rx(std::size_t i, Clock::time_point now) noexcept;
  // A PROBE_ACK arrived on link i, carrying what probe() put in.
  void on_probe_ack(std::size_t i, Clock::time_point now, const Probe& ack) noexcept;

  Pick pick(Clock::time_point now) noexcept;

  // Links that should send a PROBE now (each connected link, while active).
  LinkMask probes_due(Clock::time_point now) const noexcept;
  // The PROBE to send on link i now; records it as sent.
  Probe probe(std::size_t i, Clock::time_point now) noexcept;
  // Declares silent links dead; call at least every probe_interval while active.
  Failover check(Clock::time_point now) noexcept;
  // When probes_due or check next has work (time_point::max() when idle).
  Clock::time_point next_wakeup(Clock::time_point now) const noexcept;

  bool active(Clock::time_point now) const noexcept;
  // The link carrying realtime in fastest mode (kMaxLinks when none).
  std::size_t current() const noexcept { return current_; }
  std::uint64_t next_rseq() const noexcept { return next_rseq_; }
  // Stale: a held realtime packet enqueued at `enqueued` is older than max_age.
  bool stale(Clock::time_point enqueued, Clock::time_point now) const noexcept { return now - enqueued > p_.max_age; }

  LinkStatus status(std::size_t i) const noexcept;
  const SchedulerCounters& counters() const noexcept { return c_; }
  const SchedulerParams& params() const noexcept { return p_; }

 private:
  struct Link {
    bool connected = false, live = false, has_rtt = false;
    Clock::time_point last_rx{}, last_probe{};
    std::int64_t srtt_us = 0, rttvar_us = 0;
    std::uint64_t confirmed = 0;  // every rseq below it arrived on this link
    std::uint64_t probes_sent = 0, probes_answered = 0, deaths = 0;
    std::uint32_t next_probe_id = 0;
  };

  Clock::duration timeout(const Link& l) const noexcept;
  Clock::time_point silent_at(const Link& l) const noexcept;
  Failover died(std::size_t i) noexcept;
  std::size_t fastest() const noexcept;

  SchedulerParams p_;
  std::array<Link, kMaxLinks> links_{};
  std::uint64_t next_rseq_ = 0;
  Clock::time_point last_pick_{}, active_since_{};
  bool ever_picked_ = false;
  std::size_t current_ = kMaxLinks;
  SchedulerCounters c_;
};

}  // namespace tunnel::realtime
