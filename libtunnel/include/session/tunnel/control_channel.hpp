// The control channel of one session: messages pushed until acknowledged,
// processed one at a time in arrival order, answered with correlated results.
// Pure: no sockets, no Asio, no processes; callers pass the time in.
//
// Sending side:
//   send() puts a MESSAGE in the outbox. Every outgoing item (a MESSAGE or a
//   RESULT) gets the next number of this side's item sequence and stays in
//   the outbox until the peer's cumulative RECEIPT covers it. attached()
//   after a reconnect or resume hands every unacknowledged item out again, in
//   sequence order. A RESULT for an outgoing message completes it
//   (pop_completion()); so do the result timeout and end_session().
//
// Receiving side:
//   Items must arrive in sequence order. An item numbered at or below the
//   last one received is a duplicate: it is acknowledged again and not
//   processed. A MESSAGE whose msg_id is queued, running or among the last
//   `recent_ids` answered is not run again either. Built-in topics are
//   answered at once (tunneld.ping: "pong"; tunneld.status: the provider's
//   text; any other tunneld.* topic: no-handler). Other messages join a FIFO
//   of at most `queue_limit` waiting tasks (beyond: busy at once; without a
//   handler program: no-handler at once). next_task() hands out the oldest
//   when none is running; task_finished() turns its outcome into a RESULT.
//
// The I/O side's calls:
//   attached(now) / detached(now)   a connection carrying control frames is up / lost
//   on_frame(type, body, now)       a frame of type 9, 10 or 11 arrived (body after the header)
//   pop_frame(out)                  appends one whole frame to send now; false: nothing to send
//   next_task() / task_finished()   run the FIFO's head on the handler runner
//   pop_completion(c)               an outgoing message ended (result, timeout, session end)
//   on_timer(now), next_deadline()  result timeouts
//   end_session(now)                hold expired or CLOSE: everything unfinished ends
#pragma once

#include <tunnel/control_wire.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tunnel::control {

using Clock = std::chrono::steady_clock;

struct ChannelConfig {
  std::size_t queue_limit = 64;   // tasks waiting for the handler, the running one not counted
  bool has_handler = false;       // a handler program is configured (--on-message)
  // An outgoing message without a result this long after send() completes
  // with `timeout` (it stays in the outbox until acknowledged); 0: never.
  std::chrono::milliseconds result_timeout{std::chrono::hours(1)};
  std::size_t max_outbox_bytes = std::size_t{8} << 20;  // send() refuses beyond; results are always kept
  std::size_t recent_ids = 1024;  // answered msg_ids remembered for duplicate suppression by id
};

// The text tunneld.status answers (the status JSON). Called on the event
// loop, once per such message.
using StatusProvider = std::function<std::string()>;

// A built-in topic the owner answers (e.g. tunneld.downlink on a gateway),
// on the event loop: nullopt when it does not know `topic`, else the status
// and body of the result.
struct BuiltinReply {
  Status status = Status::done;
  std::string body;
};
using BuiltinHandler =
    std::function<std::optional<BuiltinReply>(std::string_view topic, std::span<const std::uint8_t> body)>;

enum class SendError : std::uint8_t {
  ok,
  bad_id,        // msg_id is 0
  bad_topic,     // not a valid topic (valid_topic())
  too_large,     // body over kMaxControlBody
  duplicate_id,  // a message with this msg_id is still waiting for its result
  outbox_full,   // the unacknowledged outbox holds max_outbox_bytes already
  ended,         // end_session() was called
};
std::string_view to_string(SendError e) noexcept;

// Why an arrived frame is a protocol error (the connection is closed and the
// session resumed). Everything but `ok` is counted in protocol_errors.
enum class ChannelError : std::uint8_t {
  ok,
  bad_body,        // the body did not decode; RxResult::body says why
  sequence_gap,    // an item numbered beyond the next expected one
  receipt_ahead,   // a RECEIPT for an item never handed out
};
std::string_view to_string(ChannelError e) noexcept;

struct RxResult {
  ChannelError error = ChannelError::ok;
  BodyError body = BodyError::ok;
  bool ok() const { return error == ChannelError::ok; }
};

// A received message for the handler. The runner owns it once handed out.
struct Task {
  std::uint64_t msg_id = 0;
  std::string topic;
  std::vector<std::uint8_t> body;
};

// The end of an outgoing message: its result, or a local status (timeout
// with exit -1, session_ended).
struct Completion {
  std::uint64_t msg_id = 0;
  Status status = Status::done;
  std::int16_t exit_code = kNoExit;
  bool truncated = false;
  std::vector<std::uint8_t> body;
};

struct ChannelCounters {
  // Outgoing messages.
  std::uint64_t sent = 0;           // handed out for the first time
  std::uint64_t resent = 0;         // items (messages and results) handed out again after a reconnect
  std::uint64_t acknowledged = 0;   // messages whose RECEIPT arrived
  std::uint64_t answered = 0;       // messages whose RESULT arrived
  std::uint64_t timed_out = 0;      // completed by the result timeout
  std::uint64_t ended = 0;          // completed by end_session()
  // Incoming messages.
  std::uint64_t received = 0;       // distinct messages
  std::uint64_t duplicates = 0;     // items (or msg_ids) that arrived again, not processed
  std::uint64_t refused = 0;        // answered busy or no-handler
  std::uint64_t results_sent = 0;   // RESULTs produced (built-in, refusal, handler)
  std::uint64_t dropped_at_end = 0; // queued or running tasks dropped by end_session()
  std::uint64_t results_unknown = 0;// RESULTs for no waiting message, dropped
  std::uint64_t receipts_sent = 0;
  std::uint64_t protocol_errors = 0;
};

class ControlChannel {
 public:
  explicit ControlChannel(ChannelConfig cfg = {}, StatusProvider status = {});
  // Topics under "tunneld." other than ping and status go to `h` first.
  void set_builtin(BuiltinHandler h) { builtin_ = std::move(h); }

  // Queues a message for the peer; it goes out when connected.
  SendError send(std::uint64_t msg_id, std::string_view topic, std::span<const std::uint8_t> body,
                 Clock::time_point now);

  void attached(Clock::time_point now);  // every unacknowledged item is handed out again
  void detached(Clock::time_point now);  // nothing is handed out until attached()

  // `type` is the frame header's type byte, `body` the bytes after the header.
  // A frame of another type is the caller's error (bad_body / bad_type).
  RxResult on_frame(std::uint8_t type, std::span<const std::uint8_t> body, Clock::time_point now);

  // Appends one whole frame (RECEIPT first, then items in sequence order) to
  // `out`. False when connected() is false or nothing is due.
  bool pop_frame(std::vector<std::uint8_t>& out);
  bool wants_send() const;

  // The FIFO's head when no task is running, a handler is configured and the
  // session has not ended; it is running from then on.
  std::optional<Task> next_task();
  // The running task ended. `output` over kMaxControlBody is cut (truncated).
  // False (and ignored) when `msg_id` is not the running task.
  bool task_finished(std::uint64_t msg_id, Status status, std::int16_t exit_code, bool truncated,
                     std::span<const std::uint8_t> output, Clock::time_point now);

  bool pop_completion(Completion& out);

  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  // Completes every pending outgoing message with session_ended, drops the
  // queue and the outbox. Returns the running task's msg_id, whose handler
  // the caller should stop; its task_finished() is then ignored.
  std::optional<std::uint64_t> end_session(Clock::time_point now);

  bool connected() const { return connected_; }
  bool ended() const { return ended_; }
  std::size_t pending() const { return pending_.size(); }     // outgoing messages without a result
  std::size_t queued() const { return queue_.size(); }        // tasks waiting, the running one not counted
  bool running() const { return running_.has_value(); }
  std::size_t outbox_items() const { return outbox_.size(); }
  std::size_t memory_bytes() const { return outbox_bytes_ + queued_bytes_; }
  const ChannelCounters& counters() const { return c_; }

 private:
  struct Item {
    std::uint64_t seq;
    std::uint64_t msg_id;
    bool is_message;
    bool handed_out;
    std::vector<std::uint8_t> frame;  // header + body, ready to send
  };
  struct Pending {
    std::uint64_t msg_id;
    Clock::time_point deadline;
  };

  RxResult on_message(std::span<const std::uint8_t> body);
  RxResult on_result(std::span<const std::uint8_t> body);
  RxResult on_receipt(std::span<const std::uint8_t> body);
  RxResult fail(ChannelError e, BodyError b = BodyError::ok);
  ChannelError accept_seq(std::uint64_t seq, bool& duplicate);
  void answer(std::uint64_t msg_id, Status status, std::int16_t exit_code, bool truncated,
              std::span<const std::uint8_t> body);
  void remember(std::uint64_t msg_id);
  void complete(std::uint64_t msg_id, Status status);

  ChannelConfig cfg_;
  StatusProvider status_;
  BuiltinHandler builtin_;
  bool connected_ = false;
  bool ended_ = false;

  std::deque<Item> outbox_;  // unacknowledged items in sequence order
  std::size_t cursor_ = 0;   // outbox_[cursor_] is the next to hand out
  std::size_t outbox_bytes_ = 0, outbox_msg_bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t max_handed_seq_ = 0;
  std::map<std::uint64_t, Pending> pending_;                 // by the message's seq: send order
  std::unordered_map<std::uint64_t, std::uint64_t> pending_seq_;  // msg_id -> seq
  std::deque<Completion> completions_;

  std::uint64_t rx_cum_ = 0;  // every peer item up to it arrived
  bool receipt_due_ = false;
  std::deque<Task> queue_;
  std::size_t queued_bytes_ = 0;
  std::optional<std::uint64_t> running_;
  std::unordered_set<std::uint64_t> known_ids_;  // queued, running or recently answered
  std::deque<std::uint64_t> recent_;             // answered, oldest first

  ChannelCounters c_;
};

}  // namespace tunnel::control
