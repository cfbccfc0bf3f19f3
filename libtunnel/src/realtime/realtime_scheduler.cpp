#include <tunnel/realtime_scheduler.hpp>

#include <algorithm>

namespace tunnel::realtime {

std::string_view to_string(Mode m) noexcept { return m == Mode::fastest ? "fastest" : "redundant"; }

bool parse_mode(std::string_view s, Mode& out) noexcept {
  if (s == "redundant") { out = Mode::redundant; return true; }
  if (s == "fastest") { out = Mode::fastest; return true; }
  return false;
}

namespace {

std::uint64_t ns_of(Clock::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

bool Scheduler::active(Clock::time_point now) const noexcept {
  return ever_picked_ && now - last_pick_ <= p_.active_for;
}

void Scheduler::link_up(std::size_t i, Clock::time_point now) noexcept {
  if (i >= kMaxLinks) return;
  Link& l = links_[i];
  l = Link{.next_probe_id = l.next_probe_id};
  l.connected = l.live = true;
  l.last_rx = now;
  l.confirmed = next_rseq_;
}

Failover Scheduler::link_down(std::size_t i) noexcept {
  if (i >= kMaxLinks || !links_[i].connected) return {};
  Failover f = links_[i].live ? died(i) : Failover{};
  links_[i].connected = false;
  return f;
}

void Scheduler::on_rx(std::size_t i, Clock::time_point now) noexcept {
  if (i >= kMaxLinks || !links_[i].connected) return;
  links_[i].last_rx = now;
  links_[i].live = true;
}

void Scheduler::on_probe_ack(std::size_t i, Clock::time_point now, const Probe& ack) noexcept {
  if (i >= kMaxLinks || !links_[i].connected) return;
  on_rx(i, now);
  Link& l = links_[i];
  ++l.probes_answered;
  l.confirmed = std::max(l.confirmed, std::min(ack.mark, next_rseq_));
  const std::uint64_t t = ns_of(now);
  if (ack.timestamp > t) return;  // not a time this clock produced
  const auto rtt = static_cast<std::int64_t>((t - ack.timestamp) / 1000);
  if (!l.has_rtt) {
    l.srtt_us = rtt;
    l.rttvar_us = rtt / 2;
    l.has_rtt = true;
  } else {
    // RFC 6298 smoothing (alpha 1/8, beta 1/4).
    l.rttvar_us += (std::abs(l.srtt_us - rtt) - l.rttvar_us) / 4;
    l.srtt_us += (rtt - l.srtt_us) / 8;
  }
}

Clock::duration Scheduler::timeout(const Link& l) const noexcept {
  if (!l.has_rtt) return p_.max_timeout;
  const auto t = std::chrono::microseconds(l.srtt_us + 4 * l.rttvar_us);
  return std::clamp<Clock::duration>(t, p_.min_timeout, p_.max_timeout);
}

Clock::time_point Scheduler::silent_at(const Link& l) const noexcept {
  return std::max(l.last_rx, active_since_) + p_.probe_interval + timeout(l);
}

std::size_t Scheduler::fastest() const noexcept {
  std::size_t best = kMaxLinks;
  for (std::size_t i = 0; i < kMaxLinks; ++i) {
    const Link& l = links_[i];
    if (!l.live) continue;
    if (best == kMaxLinks) { best = i; continue; }
    const Link& b = links_[best];
    if (l.has_rtt && (!b.has_rtt || l.srtt_us < b.srtt_us)) best = i;
  }
  return best;
}

Failover Scheduler::died(std::size_t i) noexcept {
  Link& l = links_[i];
  l.live = false;
  ++l.deaths;
  Failover f;
  f.died = static_cast<LinkMask>(1u << i);
  if (p_.mode == Mode::fastest && current_ == i) {
    f.resend = l.confirmed < next_rseq_;
    f.resend_from = l.confirmed;
    current_ = fastest();
    ++c_.failovers;
  }
  return f;
}

Pick Scheduler::pick(Clock::time_point now) noexcept {
  if (!active(now)) active_since_ = now;
  ever_picked_ = true;
  last_pick_ = now;
  Pick r{next_rseq_++, 0};
  ++c_.picked;
  if (p_.mode == Mode::redundant) {
    for (std::size_t i = 0; i < kMaxLinks; ++i) {
      if (links_[i].live) r.links |= static_cast<LinkMask>(1u << i);
    }
  } else {
    const std::size_t best = fastest();
    if (current_ >= kMaxLinks || !links_[current_].live) {
      current_ = best;
    } else if (best != current_ && links_[best].has_rtt &&
               (!links_[current_].has_rtt ||
                links_[best].srtt_us + std::chrono::duration_cast<std::chrono::microseconds>(p_.switch_margin).count() <
                    links_[current_].srtt_us)) {
      current_ = best;
      ++c_.switches;
    }
    if (current_ < kMaxLinks) r.links = static_cast<LinkMask>(1u << current_);
  }
  if (r.links == 0) ++c_.no_link;
  c_.copies += static_cast<unsigned>(__builtin_popcount(r.links));
  return r;
}

LinkMask Scheduler::probes_due(Clock::time_point now) const noexcept {
  if (!p_.prober || !active(now)) return 0;
  LinkMask m = 0;
  for (std::size_t i = 0; i < kMaxLinks; ++i) {
    const Link& l = links_[i];
    if (l.connected && (l.probes_sent == 0 || now - l.last_probe >= p_.probe_interval || l.last_probe < active_since_)) {
      m |= static_cast<LinkMask>(1u << i);
    }
  }
  return m;
}

Probe Scheduler::probe(std::size_t i, Clock::time_point now) noexcept {
  Probe p;
  if (i >= kMaxLinks) return p;
  Link& l = links_[i];
  p.id = l.next_probe_id++;
  p.timestamp = ns_of(now);
  p.mark = next_rseq_;
  l.last_probe = now;
  ++l.probes_sent;
  return p;
}

Failover Scheduler::check(Clock::time_point now) noexcept {
  Failover all;
  if (!p_.prober || !active(now)) return all;
  for (std::size_t i = 0; i < kMaxLinks; ++i) {
    const Link& l = links_[i];
    if (!l.connected || !l.live || now < silent_at(l)) continue;
    const Failover f = died(i);
    all.died |= f.died;
    if (f.resend) { all.resend = true; all.resend_from = f.resend_from; }
  }
  return all;
}

Clock::time_point Scheduler::next_wakeup(Clock::time_point now) const noexcept {
  if (!p_.prober || !active(now)) return Clock::time_point::max();
  Clock::time_point t = last_pick_ + p_.active_for;
  for (const Link& l : links_) {
    if (!l.connected) continue;
    t = std::min(t, std::max(l.last_probe, active_since_) + p_.probe_interval);
    if (l.live) t = std::min(t, silent_at(l));
  }
  return std::max(t, now);
}

LinkStatus Scheduler::status(std::size_t i) const noexcept {
  LinkStatus s;
  if (i >= kMaxLinks) return s;
  const Link& l = links_[i];
  s.connected = l.connected;
  s.live = l.live;
  s.has_rtt = l.has_rtt;
  s.srtt = std::chrono::microseconds(l.srtt_us);
  s.rttvar = std::chrono::microseconds(l.rttvar_us);
  s.probes_sent = l.probes_sent;
  s.probes_answered = l.probes_answered;
  s.deaths = l.deaths;
  return s;
}

}  // namespace tunnel::realtime
