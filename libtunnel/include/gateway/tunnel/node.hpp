// What both roles of a tunnel endpoint share (one skeleton, two roles): the
// TUN and its port, the MPTCP path manager and its events, the session tick,
// subflow monitoring, socket tuning after a handshake, and the orderly stop.
// The gateway (gateway.hpp) and the CPE (client.hpp) supply only what
// differs: where a TUN packet goes, how connections arrive, their sessions.
//
// Send path per TUN read batch: TunPort reads up to its batch of packets and
// calls on_packets() once; the role picks each packet's session (one call,
// no lookup by ID) and Session::enqueue() queues it on a link; after the
// batch every session touched flushes (Link::flush(), one sendmsg() per
// link until the socket would block).
//
// Single-threaded on the caller's io_context.
#pragma once

#include <tunnel/control_hub.hpp>
#include <tunnel/classifier.hpp>
#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/session.hpp>
#include <tunnel/tun_device.hpp>
#include <tunnel/tun_port.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tunnel {

// Counted by the role rather than by a session.
struct NodeCounters {
  std::uint64_t handshake_failures = 0;  // connections refused during the handshake (any reason)
  std::uint64_t auth_failures = 0;       // of those: unknown id or wrong proof
  std::uint64_t handshake_timeouts = 0;  // of those: no HELLO in time
  std::uint64_t rejected_pending = 0;    // closed at once: too many handshakes pending
  std::uint64_t refused_memory = 0;      // new sessions refused ('gateway full'): over --memory-limit
  std::uint64_t memory_bytes = 0;        // gauge: the sessions' buffer memory at the last tick (gateway)
  std::uint64_t evicted_pending = 0;     // oldest pending handshake dropped for a newcomer (max-pending caps)
  std::uint64_t accept_errors = 0;       // accept() failed (EMFILE...): the acceptor backed off
  std::uint64_t log_suppressed = 0;      // per-connection log lines dropped by the rate limit
  std::uint64_t sessions_created = 0;
  std::uint64_t sessions_closed = 0;     // ended by CLOSE
  std::uint64_t sessions_expired = 0;    // not resumed within the hold time
  std::uint64_t sessions_replaced = 0;   // the same CPE id started a new session
  std::uint64_t drop_no_route = 0;       // TUN packet for no CPE's prefix
  std::uint64_t path_redials = 0;        // CPE: bulk link re-dialled for a path of the gateway's other family
  std::array<std::uint64_t, wire::kParseStatusCount> proto_errors{};  // during handshakes
};

struct NodeConfig {
  std::string role;              // "client" or "server", for status
  TunConfig tun;                 // the TUN to create or attach to, unless tun_fd is set
  int tun_fd = -1;               // an open packet fd to use instead (duplicated; e.g. a test's socketpair)
  TunPortConfig port;
  LinkConfig link;
  SocketTuning tuning;           // applied to every connection after its handshake
  std::chrono::milliseconds stats_interval{5000};
  bool mptcp = true;             // false: plain TCP sockets (tests over loopback)
  // Traffic classes (classifier.hpp): realtime packets go on a session's
  // realtime links when it has one connected. Off: everything is bulk.
  bool realtime = true;
  std::vector<classify::Rule> class_rules;  // operator rules, tried before the defaults
  bool path_manager = true;      // use the MPTCP path manager (limits, endpoints, events)
  control::HubConfig control;    // control messages: handler program, limits (control_hub.hpp)
};

class Node : protected SessionEvents {
 public:
  using Clock = std::chrono::steady_clock;

  Node(boost::asio::io_context& io, NodeConfig cfg);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the TUN (or takes tun_fd) and the path manager, then the role's
  // own resources, and starts the timers. Throws std::runtime_error with a
  // message for the user.
  void start();
  // Ends every session (CLOSE, not waiting), cancels everything pending.
  // io_context::run() returns once the handlers have drained.
  void stop();
  // Called once when the TUN is gone (TunPort::on_failure), after the node
  // has logged it and stopped; the daemon then exits with an error.
  std::function<void(const std::string& why)> on_fatal;

  virtual std::string_view state() const = 0;
  // Every session, for status.
  virtual void for_each_session(const std::function<void(const Session&)>& f) const = 0;

  const NodeConfig& config() const { return cfg_; }
  const NodeCounters& counters() const { return dc_; }
  const TunCounters& tun_counters() const { return port_->counters(); }
  // Counters of sessions already destroyed (live ones are in their sessions).
  const LinkCounters& retired() const { return retired_; }
  // The flow table, for status (nullptr with realtime off).
  const classify::Classifier* classifier() const { return classifier_ ? &*classifier_ : nullptr; }
  const ReplayCounters& retired_replay() const { return retired_r_; }
  Clock::time_point started() const { return started_; }
  bool stopping() const { return stopping_; }
  // Control messages of every session (after start()); nullptr before.
  control::ControlHub* control() { return control_ ? &*control_ : nullptr; }
  const control::ControlHub* control() const { return control_ ? &*control_ : nullptr; }
  // What the peer of `s` is called in control messages: the CPE id on a
  // gateway, the gateway's id on a CPE.
  virtual std::string peer_name(const Session& s) const { return s.peer_id; }

 protected:
  // The role's hooks. on_packets: one TUN read batch, `now` read once.
  virtual void on_start() = 0;
  virtual void on_stop() = 0;
  virtual void on_packets(TunPort::Packets pkts, Clock::time_point now) = 0;
  virtual void on_tick(Clock::time_point now) = 0;
  virtual void on_stats() {}
  // A subflow of `l`'s connection was established or closed (after logging).
  virtual void on_subflow_event(Link& l) { (void)l; }

  // A socket of this node's transport (MPTCP unless config says plain TCP),
  // non-blocking and close-on-exec. Throws std::system_error.
  int open_socket(int family) const;
  // A plain TCP socket (a realtime link), non-blocking and close-on-exec.
  static int open_tcp_socket(int family);
  // After a link's handshake: socket options, MPTCP token, subflow log.
  void attached(Link& l, const std::string& who);
  // What the role's sessions report to (the role's link_failed()).
  SessionEvents& events() { return *this; }
  // The class of one TUN packet (updates its flow's statistics).
  bool is_realtime(std::span<const std::uint8_t> pkt, Clock::time_point now) {
    return classifier_ && classifier_->classify(pkt, now).cls == classify::TrafficClass::realtime;
  }
  // Queues a TUN packet on `s` by its class (a realtime one on the bulk link
  // when `s` has no realtime link); marks `s` for the batch-end flush.
  void send(Session& s, std::span<const std::uint8_t> pkt, Clock::time_point now) {
    const bool rt = is_realtime(pkt, now);
    if ((rt && s.has_realtime_links()) ? s.enqueue_realtime(pkt, now) : s.enqueue(pkt, now, rt)) mark_dirty(s);
  }
  // The session needs a flush at the end of this batch.
  void mark_dirty(Session& s) { dirty_.push_back(&s); }
  // The session is about to be destroyed: keep its counters, end its
  // control messages, forget it.
  void retire(Session& s);
  // Control frames (types 9-11) go to the control hub; anything else is
  // refused (the link ends the connection).
  FrameVerdict frame_received(Session& s, Link& l, const wire::Frame& f) override;

  boost::asio::io_context& io_;
  NodeConfig cfg_;
  std::optional<TunDevice> tun_;
  std::optional<TunPort> port_;
  std::optional<netlink::MptcpPm> pm_;
  NodeCounters dc_;
  bool stopping_ = false;
  std::optional<control::ControlHub> control_;

 private:
  void schedule_tick();
  void schedule_stats();
  void wait_events();
  void on_event(const netlink::PmEventMsg& ev);
  void check_link(Link& l);

  boost::asio::steady_timer tick_, stats_tick_;
  std::chrono::milliseconds tick_period_{100};
  std::optional<netlink::PmEventSocket> events_;
  std::optional<boost::asio::posix::stream_descriptor> event_sd_;
  std::vector<Session*> dirty_;
  std::unordered_map<std::uint32_t, std::weak_ptr<Link>> by_token_;
  struct Watch {
    int subflows = -1;
    bool fallback_warned = false;
    std::string who;
  };
  std::unordered_map<const Link*, Watch> watch_;
  std::optional<classify::Classifier> classifier_;
  LinkCounters retired_;
  ReplayCounters retired_r_;
  Clock::time_point started_ = Clock::now();
};

}  // namespace tunnel
