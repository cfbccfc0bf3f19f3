#include <tunnel/message_store.hpp>

#include <algorithm>
#include <set>

namespace tunnel::control {

std::string_view to_string(TargetStatus s) noexcept {
  switch (s) {
    case TargetStatus::done: return "done";
    case TargetStatus::failed: return "failed";
    case TargetStatus::timeout: return "timeout";
    case TargetStatus::busy: return "busy";
    case TargetStatus::no_handler: return "no-handler";
    case TargetStatus::session_ended: return "session-ended";
    case TargetStatus::unknown: return "unknown";
    case TargetStatus::pending: return "pending";
  }
  return "invalid";
}

TargetStatus target_status(Status s) noexcept {
  switch (s) {
    case Status::done: return TargetStatus::done;
    case Status::failed: return TargetStatus::failed;
    case Status::timeout: return TargetStatus::timeout;
    case Status::busy: return TargetStatus::busy;
    case Status::no_handler: return TargetStatus::no_handler;
    case Status::session_ended: return TargetStatus::session_ended;
  }
  return TargetStatus::failed;
}

Resolution resolve_targets(const TargetSpec& spec, std::span<const PeerEntry> table) {
  std::set<std::string_view> named(spec.ids.begin(), spec.ids.end());
  std::set<std::string_view> found_ids;
  std::set<std::string, std::less<>> peers;
  for (const PeerEntry& p : table) {
    bool take = spec.all;
    if (named.count(p.id)) {
      take = true;
      found_ids.insert(p.id);
    }
    for (const std::string& g : p.groups)
      if (std::find(spec.groups.begin(), spec.groups.end(), g) != spec.groups.end()) take = true;
    if (take) peers.emplace(p.id);
  }
  Resolution r;
  r.peers.assign(peers.begin(), peers.end());
  std::set<std::string_view> reported;
  for (const std::string& id : spec.ids)
    if (!found_ids.count(id) && reported.insert(id).second) r.unknown.push_back(id);
  return r;
}

std::string format_msg_id(std::uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4) s[static_cast<std::size_t>(i)] = kHex[id & 0xf];
  return s;
}

std::optional<std::uint64_t> parse_msg_id(std::string_view text) noexcept {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  if (v == 0) return std::nullopt;
  return v;
}

MessageStore::AddError MessageStore::add(std::uint64_t msg_id, std::string_view topic,
                                         std::span<const std::string> peers, std::span<const std::string> unknown,
                                         Clock::time_point now) {
  if (by_id_.count(msg_id)) return AddError::duplicate_id;
  if (by_id_.size() >= max_) expire(now);
  if (by_id_.size() >= max_) return AddError::full;
  SentMessage m;
  m.msg_id = msg_id;
  m.topic = std::string(topic);
  m.created = now;
  for (const std::string& p : peers) m.targets.push_back(TargetResult{p, TargetStatus::pending, kNoExit, false, {}});
  for (const std::string& p : unknown)
    m.targets.push_back(TargetResult{p, TargetStatus::unknown, kNoExit, false, {}});
  m.open = peers.size();
  if (m.open == 0) m.finished = now;
  by_id_.emplace(msg_id, std::move(m));
  return AddError::ok;
}

MessageStore::RecordError MessageStore::record(std::uint64_t msg_id, std::string_view peer, const Completion& c,
                                               Clock::time_point now) {
  const auto it = by_id_.find(msg_id);
  if (it == by_id_.end()) return RecordError::unknown_msg;
  SentMessage& m = it->second;
  for (TargetResult& t : m.targets) {
    if (t.peer != peer || t.status == TargetStatus::unknown) continue;
    if (t.status != TargetStatus::pending) return RecordError::already_final;
    t.status = target_status(c.status);
    t.exit_code = c.exit_code;
    t.truncated = c.truncated;
    t.body = c.body;
    if (--m.open == 0) m.finished = now;
    return RecordError::ok;
  }
  return RecordError::unknown_peer;
}

const SentMessage* MessageStore::find(std::uint64_t msg_id) const {
  const auto it = by_id_.find(msg_id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void MessageStore::expire(Clock::time_point now) {
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    const SentMessage& m = it->second;
    const bool done_long_ago = m.complete() && now - m.finished >= keep_;
    const bool too_old = !m.complete() && now - m.created >= max_age_;
    it = (done_long_ago || too_old) ? by_id_.erase(it) : std::next(it);
  }
}

}  // namespace tunnel::control
