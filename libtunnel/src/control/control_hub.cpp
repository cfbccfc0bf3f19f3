#include <tunnel/control_hub.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/link.hpp>
#include <tunnel/session.hpp>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace tunnel::control {

// One session's channel and what the hub keeps beside it.
struct ControlHub::PerSession {
  PerSession(Session& s, std::uint64_t serial, ChannelConfig cfg, StatusProvider status)
      : session(&s), serial(serial), sid(s.id()), ch(cfg, std::move(status)) {}
  Session* session;
  std::uint64_t serial;           // unique per channel: a handler's result finds only its own
  std::uint64_t sid;              // the session id the channel belongs to (0: not assigned yet)
  ControlChannel ch;
  bool attached = false;          // the channel was told link 0 is up (version 4)
  HandlerRunner::Ticket ticket = 0;
  std::unordered_map<std::uint64_t, std::string> peer_of;  // outgoing msg_id -> store target
  std::vector<std::uint8_t> buf;
};

namespace {

constexpr std::size_t kLargestFrame = wire::kHeaderSize + kMaxMessageBody;

bool carries_control(const Link& l) { return l.index() == 0 && l.core().version() >= 4; }

}  // namespace

void add(ChannelCounters& a, const ChannelCounters& b) {
  a.sent += b.sent;
  a.resent += b.resent;
  a.acknowledged += b.acknowledged;
  a.answered += b.answered;
  a.timed_out += b.timed_out;
  a.ended += b.ended;
  a.received += b.received;
  a.duplicates += b.duplicates;
  a.refused += b.refused;
  a.results_sent += b.results_sent;
  a.dropped_at_end += b.dropped_at_end;
  a.results_unknown += b.results_unknown;
  a.receipts_sent += b.receipts_sent;
  a.protocol_errors += b.protocol_errors;
}

ControlHub::ControlHub(boost::asio::io_context& io, HubConfig cfg, PeerName peer_name)
    : io_(io),
      cfg_(std::move(cfg)),
      peer_name_(std::move(peer_name)),
      runner_(io, cfg_.runner),
      ids_(static_cast<std::uint32_t>(hs::random_u64())) {}

ControlHub::~ControlHub() = default;

ControlHub::PerSession* ControlHub::find(const Session& s) const {
  auto it = sessions_.find(&s);
  return it == sessions_.end() ? nullptr : it->second.get();
}

// The session's channel; a session that started over under a new id (a CPE
// whose gateway did not resume it) ends the old channel and gets a new one.
ControlHub::PerSession& ControlHub::get(Session& s, Clock::time_point now) {
  auto& slot = sessions_[&s];
  if (slot && slot->sid != 0 && slot->sid != s.id()) {
    end(*slot, now, false);
    slot.reset();
  }
  if (!slot) {
    ChannelConfig cc;
    cc.queue_limit = cfg_.message_queue;
    cc.has_handler = has_handler();
    cc.result_timeout = cfg_.result_timeout;
    slot = std::make_unique<PerSession>(s, next_serial_++, cc, [this] { return status_ ? status_() : std::string(); });
    slot->ch.set_builtin([this, sp = &s](std::string_view topic,
                                         std::span<const std::uint8_t> body) -> std::optional<BuiltinReply> {
      return builtin_ ? builtin_(*sp, topic, body) : std::nullopt;
    });
  }
  if (slot->sid == 0) slot->sid = s.id();
  return *slot;
}

void ControlHub::attached(Session& s, Link& l, Clock::time_point now) {
  if (l.index() != 0) return;
  PerSession& p = get(s, now);
  if (!carries_control(l)) {
    // A version 3 peer: nothing can reach it; what waits for it is answered here.
    if (p.ch.pending() > 0) {
      spdlog::warn("session {:016x}: peer speaks protocol {}, {} control messages answered no-handler", s.id(),
                   l.core().version(), p.ch.pending());
      end(p, now, true);
      sessions_.erase(&s);
    }
    return;
  }
  p.ch.attached(now);
  p.attached = true;
  pump(p, now);
  run_next(p);
}

FrameVerdict ControlHub::on_frame(Session& s, Link& l, const wire::Frame& f, Clock::time_point now) {
  const auto type = static_cast<std::uint8_t>(f.type);
  if (type < kMessageType || type > kReceiptType) return {Fault::unexpected_frame, {}};  // not ours
  if (!carries_control(l)) return {Fault::unexpected_frame, "only link 0 carries control frames"};
  PerSession& p = get(s, now);
  if (!p.attached) {  // the attach hook runs before any frame is parsed; be safe anyway
    p.ch.attached(now);
    p.attached = true;
  }
  const RxResult r = p.ch.on_frame(type, f.body, now);
  if (!r.ok())  // counted by the channel; logged once, by the owner
    return {Fault::malformed_control, r.error == ChannelError::bad_body ? to_string(r.body) : to_string(r.error)};
  completions(p, now);
  pump(p, now);
  run_next(p);
  return {};
}

void ControlHub::tick(Clock::time_point now) {
  std::vector<const Session*> keys;
  keys.reserve(sessions_.size());
  for (auto& [k, v] : sessions_) keys.push_back(k);
  for (const Session* k : keys) {
    auto it = sessions_.find(k);
    if (it == sessions_.end()) continue;
    PerSession& p = get(*it->second->session, now);
    const Link* l0 = p.session->find_link(0);
    if (p.attached && (!l0 || !l0->connected())) {
      p.ch.detached(now);
      p.attached = false;
    }
    p.ch.on_timer(now);
    completions(p, now);
    pump(p, now);
    run_next(p);
  }
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = waiters_.erase(it);
    done();
  }
  if (now - last_expire_ >= std::chrono::seconds(1)) {
    store_.expire(now);
    last_expire_ = now;
  }
}

void ControlHub::session_ended(Session& s, Clock::time_point now) {
  auto it = sessions_.find(&s);
  if (it == sessions_.end()) return;
  end(*it->second, now, false);
  sessions_.erase(it);
}

void ControlHub::stop(Clock::time_point now) {
  for (auto& [k, p] : sessions_) end(*p, now, false);
  sessions_.clear();
  auto w = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, x] : w) x.done();
}

void ControlHub::end(PerSession& p, Clock::time_point now, bool cannot_carry) {
  if (auto running = p.ch.end_session(now); running && p.ticket) runner_.cancel(p.ticket);
  p.ticket = 0;
  completions(p, now, cannot_carry);
  add(retired_, p.ch.counters());
}

// Hands the channel's frames to link 0 while its control queue has room for
// the largest one; what does not fit goes on a later tick.
void ControlHub::pump(PerSession& p, Clock::time_point now) {
  Link* l = p.session->find_link(0);
  if (!p.attached || !l || !l->connected() || !carries_control(*l)) return;
  LinkCore& core = l->core();
  bool any = false;
  while (core.queued_bytes() + kLargestFrame <= LinkCore::kMaxQueued) {
    p.buf.clear();
    if (!p.ch.pop_frame(p.buf)) break;
    if (!core.queue_frame(p.buf)) {  // not expected with the room checked: start the outbox over
      p.ch.detached(now);
      p.ch.attached(now);
      break;
    }
    any = true;
  }
  if (any) l->flush();
}

void ControlHub::completions(PerSession& p, Clock::time_point now, bool cannot_carry) {
  Completion c;
  while (p.ch.pop_completion(c)) {
    auto it = p.peer_of.find(c.msg_id);
    if (it == p.peer_of.end()) continue;
    if (cannot_carry && c.status == Status::session_ended) c.status = Status::no_handler;
    store_.record(c.msg_id, it->second, c, now);
    p.peer_of.erase(it);
    notify(c.msg_id);
  }
}

void ControlHub::run_next(PerSession& p) {
  auto t = p.ch.next_task();
  if (!t) return;
  HandlerJob job{t->msg_id, peer_name_(*p.session), std::move(t->topic), std::move(t->body)};
  p.ticket = runner_.run(std::move(job), [this, s = p.session, serial = p.serial, id = t->msg_id](HandlerOutcome o) {
    handler_done(s, serial, id, std::move(o));
  });
}

void ControlHub::handler_done(const Session* s, std::uint64_t serial, std::uint64_t msg_id, HandlerOutcome o) {
  PerSession* p = find(*s);
  if (!p || p->serial != serial) return;  // that session's channel is gone
  const auto now = Clock::now();
  p->ticket = 0;
  p->ch.task_finished(msg_id, o.status, o.exit_code, o.truncated, o.output, now);
  pump(*p, now);
  run_next(*p);
}

void ControlHub::record_local(std::uint64_t msg_id, const std::string& peer, Status st, Clock::time_point now) {
  Completion c;
  c.msg_id = msg_id;
  c.status = st;
  store_.record(msg_id, peer, c, now);
}

std::uint64_t ControlHub::send(std::span<const Target> targets, std::span<const std::string> unknown,
                               std::string_view topic, std::span<const std::uint8_t> body, Clock::time_point now,
                               std::string& error, Refusal* why) {
  if (why) *why = Refusal::bad_request;
  if (!valid_topic(topic)) {
    error = "a topic is 1-64 characters of [A-Za-z0-9._-], not starting with '-'";
    return 0;
  }
  if (body.size() > kMaxControlBody) {
    error = "the body is over 65536 bytes";
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& t : targets) names.push_back(t.name);
  std::uint64_t id = 0;
  MessageStore::AddError ae = MessageStore::AddError::duplicate_id;
  for (int i = 0; i < 4 && ae == MessageStore::AddError::duplicate_id; ++i) {
    id = ids_.next();
    ae = store_.add(id, topic, names, unknown, now);
  }
  if (ae != MessageStore::AddError::ok) {
    if (why) *why = Refusal::store_full;
    error = fmt::format("the result store is full: it holds {} sends, each still open or answered less than {} "
                        "minutes ago (results are kept that long); try again later",
                        store_.max_messages(), store_.keep().count() / 60000);
    return 0;
  }
  for (const auto& t : targets) {
    PerSession& p = get(*t.session, now);
    const Link* l0 = t.session->find_link(0);
    if (l0 && l0->core().version() < 4) {  // the last connection was protocol 3: it cannot take the message
      record_local(id, t.name, Status::no_handler, now);
      continue;
    }
    if (const SendError e = p.ch.send(id, topic, body, now); e != SendError::ok) {
      spdlog::warn("message {} to '{}' refused: {}", format_msg_id(id), t.name, to_string(e));
      record_local(id, t.name, Status::failed, now);
      continue;
    }
    p.peer_of[id] = t.name;
    pump(p, now);
  }
  notify(id);
  return id;
}

void ControlHub::wait(std::uint64_t msg_id, Clock::time_point deadline, std::function<void()> done) {
  const SentMessage* m = store_.find(msg_id);
  if (!m || m->complete()) {
    boost::asio::post(io_, std::move(done));
    return;
  }
  waiters_.emplace(msg_id, Waiter{deadline, std::move(done)});
}

void ControlHub::notify(std::uint64_t msg_id) {
  const SentMessage* m = store_.find(msg_id);
  if (m && !m->complete()) return;
  auto [b, e] = waiters_.equal_range(msg_id);
  std::vector<std::function<void()>> ready;
  for (auto it = b; it != e; ++it) ready.push_back(std::move(it->second.done));
  waiters_.erase(b, e);
  for (auto& f : ready) boost::asio::post(io_, std::move(f));
}

const ChannelCounters* ControlHub::counters(const Session& s) const {
  const PerSession* p = find(s);
  return p ? &p->ch.counters() : nullptr;
}

std::size_t ControlHub::memory(const Session& s) const {
  const PerSession* p = find(s);
  return p ? p->ch.memory_bytes() : 0;
}

std::size_t ControlHub::pending(const Session& s) const {
  const PerSession* p = find(s);
  return p ? p->ch.pending() : 0;
}

std::size_t ControlHub::queued(const Session& s) const {
  const PerSession* p = find(s);
  return p ? p->ch.queued() + (p->ch.running() ? 1 : 0) : 0;
}

ChannelCounters ControlHub::totals() const {
  ChannelCounters t = retired_;
  for (const auto& [k, p] : sessions_) add(t, p->ch.counters());
  return t;
}

std::size_t ControlHub::pending_total() const {
  std::size_t n = 0;
  for (const auto& [k, p] : sessions_) n += p->ch.pending();
  return n;
}

}  // namespace tunnel::control
