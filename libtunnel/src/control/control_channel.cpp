#include <tunnel/control_channel.hpp>

#include <algorithm>
#include <utility>

namespace tunnel::control {
namespace {

constexpr std::string_view kBuiltinPrefix = "tunneld.";
constexpr std::string_view kPing = "tunneld.ping";
constexpr std::string_view kStatus = "tunneld.status";
constexpr std::string_view kPong = "pong";

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

std::string_view to_string(SendError e) noexcept {
  switch (e) {
    case SendError::ok: return "ok";
    case SendError::bad_id: return "bad_id";
    case SendError::bad_topic: return "bad_topic";
    case SendError::too_large: return "too_large";
    case SendError::duplicate_id: return "duplicate_id";
    case SendError::outbox_full: return "outbox_full";
    case SendError::ended: return "ended";
  }
  return "invalid";
}

std::string_view to_string(ChannelError e) noexcept {
  switch (e) {
    case ChannelError::ok: return "ok";
    case ChannelError::bad_body: return "bad_body";
    case ChannelError::sequence_gap: return "sequence_gap";
    case ChannelError::receipt_ahead: return "receipt_ahead";
  }
  return "invalid";
}

ControlChannel::ControlChannel(ChannelConfig cfg, StatusProvider status)
    : cfg_(cfg), status_(std::move(status)) {}

SendError ControlChannel::send(std::uint64_t msg_id, std::string_view topic, std::span<const std::uint8_t> body,
                               Clock::time_point now) {
  if (ended_) return SendError::ended;
  if (msg_id == 0) return SendError::bad_id;
  if (!valid_topic(topic)) return SendError::bad_topic;
  if (body.size() > kMaxControlBody) return SendError::too_large;
  if (pending_seq_.count(msg_id)) return SendError::duplicate_id;
  if (outbox_msg_bytes_ + body.size() > cfg_.max_outbox_bytes) return SendError::outbox_full;

  Item item{next_seq_++, msg_id, true, false, {}};
  encode_message(item.frame, MessageView{msg_id, item.seq, topic, body});
  outbox_bytes_ += item.frame.size();
  outbox_msg_bytes_ += item.frame.size();
  const auto deadline = cfg_.result_timeout.count() > 0 ? now + cfg_.result_timeout : Clock::time_point::max();
  pending_.emplace(item.seq, Pending{msg_id, deadline});
  pending_seq_.emplace(msg_id, item.seq);
  outbox_.push_back(std::move(item));
  return SendError::ok;
}

void ControlChannel::attached(Clock::time_point) {
  connected_ = true;
  cursor_ = 0;
  receipt_due_ = rx_cum_ > 0;
}

void ControlChannel::detached(Clock::time_point) { connected_ = false; }

RxResult ControlChannel::fail(ChannelError e, BodyError b) {
  ++c_.protocol_errors;
  return {e, b};
}

RxResult ControlChannel::on_frame(std::uint8_t type, std::span<const std::uint8_t> body, Clock::time_point) {
  if (ended_) return {};
  switch (type) {
    case kMessageType: return on_message(body);
    case kResultType: return on_result(body);
    case kReceiptType: return on_receipt(body);
    default: return fail(ChannelError::bad_body, BodyError::bad_type);
  }
}

ChannelError ControlChannel::accept_seq(std::uint64_t seq, bool& duplicate) {
  duplicate = seq <= rx_cum_;
  if (duplicate) {
    ++c_.duplicates;
    receipt_due_ = true;
    return ChannelError::ok;
  }
  if (seq != rx_cum_ + 1) return ChannelError::sequence_gap;
  rx_cum_ = seq;
  receipt_due_ = true;
  return ChannelError::ok;
}

RxResult ControlChannel::on_message(std::span<const std::uint8_t> body) {
  MessageView m;
  if (const BodyError b = decode_message(body, m); b != BodyError::ok) return fail(ChannelError::bad_body, b);
  bool dup = false;
  if (const ChannelError e = accept_seq(m.seq, dup); e != ChannelError::ok) return fail(e);
  if (dup) return {};
  if (known_ids_.count(m.msg_id)) {  // the same msg_id under a new item number
    ++c_.duplicates;
    return {};
  }
  ++c_.received;
  if (m.topic == kPing) {
    answer(m.msg_id, Status::done, 0, false, bytes(kPong));
  } else if (m.topic == kStatus && status_) {
    const std::string text = status_();
    answer(m.msg_id, Status::done, 0, false, bytes(text));
  } else if (std::optional<BuiltinReply> b; m.topic.starts_with(kBuiltinPrefix) && builtin_ &&
                                             (b = builtin_(m.topic, m.body))) {
    answer(m.msg_id, b->status, b->status == Status::done ? 0 : kNoExit, false, bytes(b->body));
  } else if (m.topic.starts_with(kBuiltinPrefix) || !cfg_.has_handler) {
    ++c_.refused;
    answer(m.msg_id, Status::no_handler, kNoExit, false, {});
  } else if (queue_.size() >= cfg_.queue_limit) {
    ++c_.refused;
    answer(m.msg_id, Status::busy, kNoExit, false, {});
  } else {
    queue_.push_back(Task{m.msg_id, std::string(m.topic), {m.body.begin(), m.body.end()}});
    queued_bytes_ += m.topic.size() + m.body.size();
    known_ids_.insert(m.msg_id);
  }
  return {};
}

RxResult ControlChannel::on_result(std::span<const std::uint8_t> body) {
  ResultView r;
  if (const BodyError b = decode_result(body, r); b != BodyError::ok) return fail(ChannelError::bad_body, b);
  bool dup = false;
  if (const ChannelError e = accept_seq(r.seq, dup); e != ChannelError::ok) return fail(e);
  if (dup) return {};
  const auto it = pending_seq_.find(r.msg_id);
  if (it == pending_seq_.end()) {
    ++c_.results_unknown;
    return {};
  }
  pending_.erase(it->second);
  pending_seq_.erase(it);
  ++c_.answered;
  completions_.push_back(Completion{r.msg_id, r.status, r.exit_code, r.truncated, {r.body.begin(), r.body.end()}});
  return {};
}

RxResult ControlChannel::on_receipt(std::span<const std::uint8_t> body) {
  std::uint64_t seq = 0;
  if (const BodyError b = decode_receipt(body, seq); b != BodyError::ok) return fail(ChannelError::bad_body, b);
  if (seq > max_handed_seq_) return fail(ChannelError::receipt_ahead);
  while (!outbox_.empty() && outbox_.front().seq <= seq) {
    Item& front = outbox_.front();
    outbox_bytes_ -= front.frame.size();
    if (front.is_message) {
      outbox_msg_bytes_ -= front.frame.size();
      ++c_.acknowledged;
    }
    outbox_.pop_front();
    if (cursor_ > 0) --cursor_;
  }
  return {};
}

bool ControlChannel::wants_send() const {
  return connected_ && !ended_ && (receipt_due_ || cursor_ < outbox_.size());
}

bool ControlChannel::pop_frame(std::vector<std::uint8_t>& out) {
  if (!connected_ || ended_) return false;
  if (receipt_due_) {
    receipt_due_ = false;
    ++c_.receipts_sent;
    encode_receipt(out, rx_cum_);
    return true;
  }
  if (cursor_ >= outbox_.size()) return false;
  Item& item = outbox_[cursor_++];
  if (item.handed_out) {
    ++c_.resent;
  } else {
    item.handed_out = true;
    if (item.is_message) ++c_.sent;
  }
  max_handed_seq_ = std::max(max_handed_seq_, item.seq);
  out.insert(out.end(), item.frame.begin(), item.frame.end());
  return true;
}

void ControlChannel::answer(std::uint64_t msg_id, Status status, std::int16_t exit_code, bool truncated,
                            std::span<const std::uint8_t> body) {
  if (body.size() > kMaxControlBody) {
    body = body.first(kMaxControlBody);
    truncated = true;
  }
  Item item{next_seq_++, msg_id, false, false, {}};
  encode_result(item.frame, ResultView{msg_id, item.seq, status, truncated, exit_code, body});
  outbox_bytes_ += item.frame.size();
  outbox_.push_back(std::move(item));
  ++c_.results_sent;
  remember(msg_id);
}

void ControlChannel::remember(std::uint64_t msg_id) {
  known_ids_.insert(msg_id);
  recent_.push_back(msg_id);
  while (recent_.size() > cfg_.recent_ids) {
    known_ids_.erase(recent_.front());
    recent_.pop_front();
  }
}

std::optional<Task> ControlChannel::next_task() {
  if (ended_ || running_ || queue_.empty()) return std::nullopt;
  Task t = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= t.topic.size() + t.body.size();
  running_ = t.msg_id;
  return t;
}

bool ControlChannel::task_finished(std::uint64_t msg_id, Status status, std::int16_t exit_code, bool truncated,
                                   std::span<const std::uint8_t> output, Clock::time_point) {
  if (ended_ || !running_ || *running_ != msg_id) return false;
  running_.reset();
  answer(msg_id, status, exit_code, truncated, output);
  return true;
}

bool ControlChannel::pop_completion(Completion& out) {
  if (completions_.empty()) return false;
  out = std::move(completions_.front());
  completions_.pop_front();
  return true;
}

void ControlChannel::complete(std::uint64_t msg_id, Status status) {
  completions_.push_back(Completion{msg_id, status, kNoExit, false, {}});
}

void ControlChannel::on_timer(Clock::time_point now) {
  // Deadlines grow with the sequence (one timeout, a monotonic clock), so the
  // expired ones are at the front.
  while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
    const std::uint64_t id = pending_.begin()->second.msg_id;
    pending_seq_.erase(id);
    pending_.erase(pending_.begin());
    ++c_.timed_out;
    complete(id, Status::timeout);
  }
}

std::optional<Clock::time_point> ControlChannel::next_deadline() const {
  if (pending_.empty() || pending_.begin()->second.deadline == Clock::time_point::max()) return std::nullopt;
  return pending_.begin()->second.deadline;
}

std::optional<std::uint64_t> ControlChannel::end_session(Clock::time_point) {
  if (ended_) return std::nullopt;
  ended_ = true;
  for (const auto& [seq, p] : pending_) {
    ++c_.ended;
    complete(p.msg_id, Status::session_ended);
  }
  pending_.clear();
  pending_seq_.clear();
  c_.dropped_at_end += queue_.size() + (running_ ? 1 : 0);
  queue_.clear();
  queued_bytes_ = 0;
  outbox_.clear();
  outbox_bytes_ = outbox_msg_bytes_ = 0;
  cursor_ = 0;
  receipt_due_ = false;
  const auto was_running = running_;
  running_.reset();
  return was_running;
}

}  // namespace tunnel::control
