// The sender's record of its `send`s: one msg_id per send, shared by all of
// its targets, and per target (a peer id) the status and result as they come
// in. `tunneld send` waits on it and `tunneld result MSG_ID` reads it later.
// Pure: callers pass the time in.
//
// - Targets are resolved by the caller when the message is sent
//   (resolve_targets() over its CPE table, held sessions included); ids
//   that are not in the table are recorded as `unknown` at once.
// - A record is kept until every target is final and then for `keep` (10
//   minutes by default). One with a target still pending is dropped when it
//   is `max_age` old (a channel's result timeout normally completes it first).
// - At most `max_messages` records are held. A record is never dropped
//   early to make room: when the store is full of records within their time,
//   a new send is refused (`full`) until one expires.
#pragma once

#include <tunnel/control_channel.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel::control {

// A target's state as the admin command shows it. The first six are the
// wire's Status values, in the same order.
enum class TargetStatus : std::uint8_t {
  done,
  failed,
  timeout,
  busy,
  no_handler,
  session_ended,
  unknown,  // the id was not in the CPE table when the message was sent
  pending,  // no result yet
};
std::string_view to_string(TargetStatus s) noexcept;  // "done" ... "unknown", "pending"
TargetStatus target_status(Status s) noexcept;

// `tunneld send`'s target flags. On a CPE all are empty: the gateway is the target.
struct TargetSpec {
  std::vector<std::string> ids;     // --to ID (repeatable)
  std::vector<std::string> groups;  // --group NAME (repeatable)
  bool all = false;                 // --all
};

// One row of the caller's CPE table as resolve_targets() reads it.
struct PeerEntry {
  std::string_view id;
  std::span<const std::string> groups;  // announced in the CPE's HELLO (and allowed by its key binding)
};

struct Resolution {
  std::vector<std::string> peers;    // each matching peer once, sorted by id
  std::vector<std::string> unknown;  // --to ids not in the table, once each, in the order given
};
Resolution resolve_targets(const TargetSpec& spec, std::span<const PeerEntry> table);

struct TargetResult {
  std::string peer;
  TargetStatus status = TargetStatus::pending;
  std::int16_t exit_code = kNoExit;
  bool truncated = false;
  std::vector<std::uint8_t> body;
};

struct SentMessage {
  std::uint64_t msg_id = 0;
  std::string topic;
  Clock::time_point created{};
  Clock::time_point finished{};  // when the last target became final; valid once complete()
  std::vector<TargetResult> targets;  // the resolved peers, then the unknown ids
  std::size_t open = 0;               // targets still pending
  bool complete() const { return open == 0; }
};

// msg_ids for one sender: `seed` (random at start-up) in the high 32 bits
// keeps ids of successive daemon runs apart, a counter in the low 32. Never 0.
class MsgIdSource {
 public:
  explicit MsgIdSource(std::uint32_t seed) : next_((std::uint64_t{seed} << 32) | 1) {}
  std::uint64_t next() {
    const std::uint64_t id = next_++;
    if (next_ == 0) next_ = 1;
    return id;
  }

 private:
  std::uint64_t next_;
};

// The admin form of a msg_id: 16 lowercase hex digits. parse_msg_id takes
// 1-16 hex digits (either case) and refuses 0.
std::string format_msg_id(std::uint64_t id);
std::optional<std::uint64_t> parse_msg_id(std::string_view text) noexcept;

class MessageStore {
 public:
  enum class AddError : std::uint8_t { ok, duplicate_id, full };
  enum class RecordError : std::uint8_t { ok, unknown_msg, unknown_peer, already_final };

  explicit MessageStore(std::chrono::milliseconds keep = std::chrono::minutes(10),
                        std::chrono::milliseconds max_age = std::chrono::hours(24), std::size_t max_messages = 4096)
      : keep_(keep), max_age_(max_age), max_(max_messages) {}

  // Records a send. When the store holds max_messages, the records past
  // their time are dropped first (expire(now)); `full` when none is.
  AddError add(std::uint64_t msg_id, std::string_view topic, std::span<const std::string> peers,
               std::span<const std::string> unknown, Clock::time_point now);

  // A target's outcome: its channel's Completion for this msg_id.
  RecordError record(std::uint64_t msg_id, std::string_view peer, const Completion& c, Clock::time_point now);

  // Valid until the next add() or expire().
  const SentMessage* find(std::uint64_t msg_id) const;
  void expire(Clock::time_point now);
  std::size_t size() const { return by_id_.size(); }
  std::size_t max_messages() const { return max_; }
  std::chrono::milliseconds keep() const { return keep_; }

 private:
  std::chrono::milliseconds keep_, max_age_;
  std::size_t max_;
  std::map<std::uint64_t, SentMessage> by_id_;
};

}  // namespace tunnel::control
