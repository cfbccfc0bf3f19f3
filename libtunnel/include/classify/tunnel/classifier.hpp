// Per-packet traffic classification (docs/realtime.md).
//
// A packet is classed, first match wins:
//   1. by the operator's rules (class_rules.hpp), in the order given;
//   2. realtime by DSCP when its DSCP is in `realtime_dscp` (default EF,
//      AF41-43, CS4, CS5), unless its flow sends more than
//      `dscp_flow_cap_bps` (a mismarked bulk flow stays bulk);
//   3. by its flow's behaviour: realtime while the flow sends small packets
//      (mean <= small_bytes) at a low rate (<= low_rate_bps), measured over
//      windows of `window`; otherwise bulk.
// Behaviour has hysteresis: a new flow whose first packet is small starts
// realtime; a realtime flow becomes bulk at once when its current window
// exceeds the rate or size limit by half; a bulk flow becomes realtime only
// after `promote_windows` consecutive windows within the limits.
//
// Flows live in a fixed table (open addressing, bounded probe, allocated
// once). A flow idle for `idle_timeout` is forgotten; when the probe window
// is full, the least recently seen flow in it is evicted (counted). No
// allocation and no indirect call per packet. Not thread-safe.
#pragma once

#include <tunnel/class_rules.hpp>
#include <tunnel/traffic_class.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace tunnel::classify {

using Clock = std::chrono::steady_clock;

inline constexpr std::size_t kMaxRules = 32;

// Bits 0..63, one per DSCP value.
inline constexpr std::uint64_t dscp_bit(unsigned d) { return std::uint64_t{1} << d; }
inline constexpr std::uint64_t kDefaultRealtimeDscp =
    dscp_bit(46) | dscp_bit(34) | dscp_bit(36) | dscp_bit(38) | dscp_bit(32) | dscp_bit(40);

struct ClassifierConfig {
  std::span<const Rule> rules;  // copied; at most kMaxRules (the rest is ignored)
  std::uint64_t realtime_dscp = kDefaultRealtimeDscp;
  std::uint32_t dscp_flow_cap_bps = 4'000'000;
  std::uint32_t small_bytes = 300;
  std::uint32_t low_rate_bps = 200'000;
  std::chrono::milliseconds window{500};
  unsigned promote_windows = 4;
  std::chrono::milliseconds idle_timeout{30'000};
  std::size_t capacity = 4096;  // flows; rounded up to a power of two, at least 64
};

// Why a packet or flow has its class.
enum class Reason : std::uint8_t { rule, dscp, behaviour };
std::string_view to_string(Reason r) noexcept;

struct Decision {
  TrafficClass cls = TrafficClass::bulk;
  Reason why = Reason::behaviour;
};

// One flow as `tunneld status` shows it.
struct FlowInfo {
  FlowKey key;
  TrafficClass cls = TrafficClass::bulk;  // of the flow's last packet
  Reason why = Reason::behaviour;
  std::uint32_t rate_bps = 0;   // over the last whole window
  std::uint32_t mean_bytes = 0; // over the last whole window
  std::uint64_t packets = 0;    // since the flow was first seen
  std::chrono::milliseconds idle{0};
};

struct ClassifierCounters {
  std::uint64_t realtime_packets = 0, bulk_packets = 0;
  std::uint64_t uninspectable = 0;  // not IPv4/IPv6: classed bulk
  std::uint64_t flows_created = 0, flows_evicted = 0;
  std::uint64_t promotions = 0, demotions = 0;  // behaviour changes of a flow's class
};

class Classifier {
 public:
  // Allocates the flow table. Throws std::bad_alloc only.
  explicit Classifier(const ClassifierConfig& cfg);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Classes one raw IP packet seen at `now` (times must not go backwards by
  // more than the window) and updates its flow.
  Decision classify(std::span<const std::uint8_t> pkt, Clock::time_point now) noexcept;
  Decision classify(const PacketInfo& info, Clock::time_point now) noexcept;

  // Writes up to out.size() flows seen within the idle timeout, in table
  // order, and returns how many it wrote. For status, not the data path.
  std::size_t snapshot(std::span<FlowInfo> out, Clock::time_point now) const noexcept;
  std::size_t live_flows(Clock::time_point now) const noexcept;

  const ClassifierCounters& counters() const noexcept { return counters_; }
  std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  struct Entry;
  Entry* find_or_insert(const FlowKey& key, std::uint32_t h, std::int64_t now);
  Decision behaviour(Entry& e, const PacketInfo& info, std::int64_t now) noexcept;

  Rule rules_[kMaxRules];
  std::size_t n_rules_ = 0;
  ClassifierConfig cfg_;
  std::int64_t window_ns_, idle_ns_;
  std::unique_ptr<Entry[]> table_;
  std::size_t mask_ = 0;
  ClassifierCounters counters_;
};

}  // namespace tunnel::classify
