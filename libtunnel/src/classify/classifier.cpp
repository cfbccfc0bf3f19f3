// Classifier: rules, then DSCP, then the flow's behaviour (classifier.hpp).
#include <tunnel/classifier.hpp>

#include <algorithm>

namespace tunnel::classify {

std::string_view to_string(Reason r) noexcept {
  switch (r) {
    case Reason::rule: return "rule";
    case Reason::dscp: return "dscp";
    case Reason::behaviour: return "behaviour";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kProbe = 16;  // slots examined per lookup

std::int64_t ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct Classifier::Entry {
  FlowKey key;
  std::uint32_t hash = 0;
  bool used = false;
  TrafficClass cls = TrafficClass::bulk;        // last decision
  Reason why = Reason::behaviour;
  TrafficClass by_behaviour = TrafficClass::bulk;
  std::uint8_t good_windows = 0;
  std::int64_t last_seen = 0, window_start = 0;
  std::uint32_t win_bytes = 0, win_pkts = 0;
  std::uint32_t rate_bps = 0, mean_bytes = 0;  // last whole window
  std::uint64_t packets = 0;
};

Classifier::Classifier(const ClassifierConfig& cfg)
    : cfg_(cfg),
      window_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.window).count()),
      idle_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.idle_timeout).count()) {
  n_rules_ = std::min(cfg.rules.size(), kMaxRules);
  std::copy_n(cfg.rules.begin(), n_rules_, rules_);
  cfg_.rules = {};
  if (window_ns_ <= 0) window_ns_ = 1;
  std::size_t cap = 64;
  while (cap < cfg.capacity) cap <<= 1;
  table_ = std::make_unique<Entry[]>(cap);
  mask_ = cap - 1;
}

Classifier::~Classifier() = default;

Classifier::Entry* Classifier::find_or_insert(const FlowKey& key, std::uint32_t h, std::int64_t now) {
  Entry* free_slot = nullptr;
  Entry* oldest = nullptr;
  for (std::size_t i = 0; i < kProbe; ++i) {
    Entry& e = table_[(h + i) & mask_];
    const bool live = e.used && now - e.last_seen <= idle_ns_;
    if (live && e.hash == h && e.key == key) return &e;
    if (!live) {
      if (!free_slot) free_slot = &e;
    } else if (!oldest || e.last_seen < oldest->last_seen) {
      oldest = &e;
    }
  }
  Entry* e = free_slot;
  if (!e) {
    e = oldest;
    ++counters_.flows_evicted;
  }
  *e = Entry{};
  e->key = key;
  e->hash = h;
  e->used = true;
  e->window_start = now;
  ++counters_.flows_created;
  return e;
}

Decision Classifier::behaviour(Entry& e, const PacketInfo& info, std::int64_t now) noexcept {
  const std::uint64_t low = cfg_.low_rate_bps, small = cfg_.small_bytes;
  if (e.packets == 0) {
    e.by_behaviour = info.length <= small ? TrafficClass::realtime : TrafficClass::bulk;
  } else if (now - e.window_start >= window_ns_) {
    // Close the window: rate over its true length (longer when the flow paused).
    const std::uint64_t elapsed = static_cast<std::uint64_t>(now - e.window_start);
    e.rate_bps = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(std::uint64_t{e.win_bytes} * 8'000'000'000ull / elapsed, UINT32_MAX));
    e.mean_bytes = e.win_pkts ? e.win_bytes / e.win_pkts : 0;
    const bool within = e.rate_bps <= low && e.mean_bytes <= small;
    if (e.by_behaviour == TrafficClass::bulk) {
      e.good_windows = within ? static_cast<std::uint8_t>(std::min<unsigned>(e.good_windows + 1, 255)) : 0;
      if (e.good_windows >= cfg_.promote_windows) {
        e.by_behaviour = TrafficClass::realtime;
        ++counters_.promotions;
      }
    } else if (2 * std::uint64_t{e.rate_bps} > 3 * low || 2 * std::uint64_t{e.mean_bytes} > 3 * small) {
      e.by_behaviour = TrafficClass::bulk;
      e.good_windows = 0;
      ++counters_.demotions;
    }
    e.window_start = now;
    e.win_bytes = e.win_pkts = 0;
  }
  e.win_bytes += info.length;
  ++e.win_pkts;
  if (e.by_behaviour == TrafficClass::realtime) {
    // Within the window: more than half again the rate budget, or (after a
    // few packets) the mean size, demotes at once.
    const std::uint64_t budget_bits = low * static_cast<std::uint64_t>(window_ns_) / 1'000'000'000ull;
    const bool over_rate = 2 * std::uint64_t{e.win_bytes} * 8 > 3 * budget_bits;
    const bool over_size = e.win_pkts >= 8 && 2 * std::uint64_t{e.win_bytes} > 3 * small * e.win_pkts;
    if (over_rate || over_size) {
      e.by_behaviour = TrafficClass::bulk;
      e.good_windows = 0;
      ++counters_.demotions;
    }
  }
  return {e.by_behaviour, Reason::behaviour};
}

Decision Classifier::classify(std::span<const std::uint8_t> pkt, Clock::time_point now) noexcept {
  const auto info = inspect(pkt);
  if (!info) {
    ++counters_.uninspectable;
    ++counters_.bulk_packets;
    return {TrafficClass::bulk, Reason::behaviour};
  }
  return classify(*info, now);
}

Decision Classifier::classify(const PacketInfo& info, Clock::time_point now_tp) noexcept {
  const std::int64_t now = ns_of(now_tp);
  Entry& e = *find_or_insert(info.key, hash(info.key), now);
  Decision d = behaviour(e, info, now);
  e.last_seen = now;
  ++e.packets;
  bool decided = false;
  for (std::size_t i = 0; i < n_rules_; ++i) {
    if (matches(rules_[i], info)) {
      d = {rules_[i].cls, Reason::rule};
      decided = true;
      break;
    }
  }
  if (!decided && (cfg_.realtime_dscp & dscp_bit(info.dscp))) {
    const std::uint64_t cap_bits = std::uint64_t{cfg_.dscp_flow_cap_bps} * static_cast<std::uint64_t>(window_ns_) /
                                   1'000'000'000ull;
    if (e.rate_bps <= cfg_.dscp_flow_cap_bps && std::uint64_t{e.win_bytes} * 8 <= cap_bits) {
      d = {TrafficClass::realtime, Reason::dscp};
    }
  }
  e.cls = d.cls;
  e.why = d.why;
  ++(d.cls == TrafficClass::realtime ? counters_.realtime_packets : counters_.bulk_packets);
  return d;
}

std::size_t Classifier::snapshot(std::span<FlowInfo> out, Clock::time_point now_tp) const noexcept {
  const std::int64_t now = ns_of(now_tp);
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_ && n < out.size(); ++i) {
    const Entry& e = table_[i];
    if (!e.used || now - e.last_seen > idle_ns_) continue;
    FlowInfo& f = out[n++];
    f.key = e.key;
    f.cls = e.cls;
    f.why = e.why;
    f.rate_bps = e.rate_bps;
    f.mean_bytes = e.mean_bytes;
    f.packets = e.packets;
    f.idle = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(now - e.last_seen));
  }
  return n;
}

std::size_t Classifier::live_flows(Clock::time_point now_tp) const noexcept {
  const std::int64_t now = ns_of(now_tp);
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_; ++i) n += table_[i].used && now - table_[i].last_seen <= idle_ns_;
  return n;
}

}  // namespace tunnel::classify
