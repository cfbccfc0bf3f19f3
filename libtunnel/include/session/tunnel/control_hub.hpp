// The control messages of one tunnel endpoint (issue 12): a ControlChannel
// per session, driven by the link events of the session's bulk link (link 0),
// one HandlerRunner and one MessageStore for the whole daemon, and the admin
// side (`tunneld send`, `tunneld result`) waiting on the store.
//
// Per session (created on the first event that names the session):
//   attached(s, l)    link 0's connection is up: a version 4 connection lets
//                     the channel hand out every unacknowledged item again;
//                     a version 3 one cannot carry control frames, and what
//                     waits for that peer ends `no-handler` at once
//   on_frame(s, l, f) a frame of type 9-11 parsed on link 0; a verdict of
//                     Fault::malformed_control (the channel refused it,
//                     counted in its protocol_errors) or unexpected_frame
//                     (not a control frame, or not on a link that carries
//                     them) ends the connection: the link counts and the
//                     owner logs it (session.hpp, SessionEvents)
//   tick(now)         a lost link 0, a session that started over (its id
//                     changed: the old one ended), result timeouts, frames
//                     that did not fit the link's control queue, waiters
//   session_ended(s)  before the owner destroys a session (hold expired,
//                     CLOSE, replaced): every unfinished message ends with
//                     `session-ended`, its running handler is killed
// Frames go out through LinkCore::queue_frame() (between DATA frames, never
// on a realtime link) and Link::flush(). Handlers run on the HandlerRunner,
// never on the forwarding path; a finished handler's result is matched to its
// session by a serial number, so a session gone meanwhile is never touched.
//
// Single-threaded on the node's io_context. Control frames may allocate;
// nothing here runs per data packet.
#pragma once

#include <tunnel/control_channel.hpp>
#include <tunnel/fault.hpp>
#include <tunnel/handler_runner.hpp>
#include <tunnel/message_store.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tunnel {
class Link;
class Session;
}  // namespace tunnel

namespace tunnel::control {

struct HubConfig {
  RunnerConfig runner;             // runner.program empty: every topic but the built-ins is `no-handler`
  std::size_t message_queue = 64;  // per session, the running message not counted
  std::chrono::milliseconds result_timeout{std::chrono::hours(1)};
};

class ControlHub {
 public:
  // What a session's peer is called: the CPE id on a gateway, the gateway's
  // id on a CPE. Used for the store's targets and TUNNELD_PEER_ID.
  using PeerName = std::function<std::string(const Session&)>;

  ControlHub(boost::asio::io_context& io, HubConfig cfg, PeerName peer_name);
  ~ControlHub();
  ControlHub(const ControlHub&) = delete;
  ControlHub& operator=(const ControlHub&) = delete;

  // The text `tunneld.status` answers (the status JSON).
  void set_status(StatusProvider p) { status_ = std::move(p); }
  // Other built-in topics, answered by the owner for the session they came on.
  using Builtin = std::function<std::optional<BuiltinReply>(Session&, std::string_view topic,
                                                            std::span<const std::uint8_t> body)>;
  void set_builtin(Builtin b) { builtin_ = std::move(b); }

  // ---- the node's events (see above)
  void attached(Session& s, Link& l, Clock::time_point now);
  FrameVerdict on_frame(Session& s, Link& l, const wire::Frame& f, Clock::time_point now);
  void tick(Clock::time_point now);
  void session_ended(Session& s, Clock::time_point now);
  // The node stops: every session's channel ends, waiters are answered.
  void stop(Clock::time_point now);

  // ---- admin
  struct Target {
    Session* session = nullptr;
    std::string name;  // the peer, as the store records it
  };
  // Sends one message to every target under one new msg_id; `unknown` ids
  // are recorded `unknown`. A target whose peer speaks protocol 3 is
  // answered `no-handler` at once, a target whose channel refuses the message
  // (outbox full, session ending) `failed` with no exit code. Returns the
  // msg_id, or 0 with `error` set and, when `why` is given, *why: the topic
  // or body is not valid (bad_request), or the store holds as many records
  // within their time as it may (store_full; MessageStore). Nothing is
  // recorded then.
  enum class Refusal : std::uint8_t { bad_request, store_full };
  std::uint64_t send(std::span<const Target> targets, std::span<const std::string> unknown, std::string_view topic,
                     std::span<const std::uint8_t> body, Clock::time_point now, std::string& error,
                     Refusal* why = nullptr);
  // Calls `done` once: when every target of `msg_id` is final, or at
  // `deadline`, or at stop(). Never from inside wait().
  void wait(std::uint64_t msg_id, Clock::time_point deadline, std::function<void()> done);
  const MessageStore& store() const { return store_; }

  // ---- status
  // The session's channel counters; nullptr when it has no channel yet.
  const ChannelCounters* counters(const Session& s) const;
  std::size_t pending(const Session& s) const;  // outgoing messages without a result
  std::size_t queued(const Session& s) const;   // received messages waiting for the handler
  // Bytes the session's channel holds (messages kept for their receipts and
  // waiting for the handler): part of the session's memory.
  std::size_t memory(const Session& s) const;
  // Live sessions and those already ended.
  ChannelCounters totals() const;
  std::size_t pending_total() const;
  const RunnerCounters& runner_counters() const { return runner_.counters(); }
  std::size_t handlers_running() const { return runner_.running(); }
  bool has_handler() const { return !cfg_.runner.program.empty(); }

 private:
  struct PerSession;
  PerSession& get(Session& s, Clock::time_point now);
  PerSession* find(const Session& s) const;
  void end(PerSession& p, Clock::time_point now, bool cannot_carry);
  void pump(PerSession& p, Clock::time_point now);
  void completions(PerSession& p, Clock::time_point now, bool cannot_carry = false);
  void run_next(PerSession& p);
  void handler_done(const Session* s, std::uint64_t serial, std::uint64_t msg_id, HandlerOutcome o);
  void notify(std::uint64_t msg_id);
  void record_local(std::uint64_t msg_id, const std::string& peer, Status st, Clock::time_point now);

  boost::asio::io_context& io_;
  HubConfig cfg_;
  PeerName peer_name_;
  StatusProvider status_;
  Builtin builtin_;
  HandlerRunner runner_;
  MessageStore store_;
  MsgIdSource ids_;
  std::unordered_map<const Session*, std::unique_ptr<PerSession>> sessions_;
  std::uint64_t next_serial_ = 1;
  struct Waiter {
    Clock::time_point deadline;
    std::function<void()> done;
  };
  std::multimap<std::uint64_t, Waiter> waiters_;
  ChannelCounters retired_;
  Clock::time_point last_expire_{};
};

// Adds `b` into `a`, field by field.
void add(ChannelCounters& a, const ChannelCounters& b);

}  // namespace tunnel::control
