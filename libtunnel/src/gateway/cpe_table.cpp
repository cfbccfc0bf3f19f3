#include <tunnel/cpe_table.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {
namespace {
std::size_t addr_bytes(std::uint8_t family) { return family == 4 ? 4 : 16; }
int fam_index(std::uint8_t family) { return family == 4 ? 0 : 1; }
}  // namespace


CpeTable::Admission CpeTable::admit(std::string_view id, std::uint64_t resume_session,
                                    std::span<const Prefix> prefixes, std::uint64_t fresh_id) const {
  Admission a;
  const std::uint64_t existing = session_of(id);
  if (resume_session != 0 && resume_session == existing) {
    a.verdict = Verdict::resume;
    a.session_id = existing;
  } else {
    if (existing == 0 && by_session_.size() >= max_) {
      a.error = Fault::gateway_full;
      return a;
    }
    a.verdict = Verdict::create;
    a.session_id = fresh_id;
    a.replaces = existing;
  }
  // Prefixes may not overlap another CPE's (the same CPE's old session is
  // about to be replaced or resumed, so its own do not count).
  for (const auto& p : prefixes) {
    const RawPrefix rp = RawPrefix::from(p);
    for (const auto& [sid, e] : by_session_) {
      if (sid == existing) continue;
      for (const auto& q : e.prefixes)
        if (rp.overlaps(q)) {
          a = {};
          a.error = Fault::prefix_in_use;
          return a;
        }
    }
  }
  return a;
}

void CpeTable::index(Session* sess, const Entry& e, bool add) {
  for (const auto& p : e.prefixes) {
    auto& lens = lengths_[static_cast<std::size_t>(fam_index(p.family))];
    if (add) {
      routes_[p] = sess;
      ++lens[p.length];
    } else {
      routes_.erase(p);
      if (--lens[p.length] == 0) lens.erase(p.length);
    }
  }
}

void CpeTable::insert(std::uint64_t session_id, std::string_view id, std::span<const Prefix> prefixes,
                      Session* session) {
  erase(session_id);
  if (auto old = session_of(id)) erase(old);
  Entry e{std::string(id), {}, session};
  for (const auto& p : prefixes) {
    RawPrefix rp = RawPrefix::from(p);
    if (std::find(e.prefixes.begin(), e.prefixes.end(), rp) == e.prefixes.end()) e.prefixes.push_back(rp);
  }
  index(session, e, true);
  by_id_[e.id] = session_id;
  by_session_.emplace(session_id, std::move(e));
}

void CpeTable::erase(std::uint64_t session_id) {
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  index(it->second.session, it->second, false);
  by_id_.erase(it->second.id);
  by_session_.erase(it);
}

Session* CpeTable::route(std::uint8_t family, const std::uint8_t* dst) const {
  RawPrefix key;
  key.family = family;
  const std::size_t n = addr_bytes(family);
  for (const auto& [len, count] : lengths_[static_cast<std::size_t>(fam_index(family))]) {
    key.length = len;
    std::memcpy(key.net.data(), dst, n);
    mask_bits(key.net, len);
    if (auto it = routes_.find(key); it != routes_.end()) return it->second;
  }
  return nullptr;
}

std::uint64_t CpeTable::session_of(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? 0 : it->second;
}

}  // namespace tunnel
