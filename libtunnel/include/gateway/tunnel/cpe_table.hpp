// The gateway's table of CPE sessions, pure (no I/O) so that admission,
// routing and anti-spoofing are unit-tested on their own.
//
// - admit(): given a HELLO whose proof checked out, decides whether it
//   resumes a held session, starts a new one (replacing an older session of
//   the same CPE id), or is refused (gateway full, prefix claimed by another
//   CPE). Prefixes of different CPEs may not overlap, so every inner address
//   belongs to at most one CPE.
// - route(): the session that serves an inner destination address, by
//   longest-prefix match: one hash lookup per prefix length in use, and the
//   answer is the Session itself (no second lookup by ID).
// Anti-spoofing is the session's own check (Session::check_sources).
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/fault.hpp>
#include <tunnel/raw_prefix.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tunnel {

class Session;

class CpeTable {
 public:
  enum class Verdict { create, resume, reject };
  struct Admission {
    Verdict verdict = Verdict::reject;
    std::uint64_t session_id = 0;       // resume: the held session; create: the new ID
    std::uint64_t replaces = 0;         // create: an older session of the same id to destroy first
    Fault error = Fault::none;          // reject: gateway_full or prefix_in_use
  };

  explicit CpeTable(std::size_t max_cpes) : max_(max_cpes) {}

  // `fresh_id` is the session ID to assign when a new session is created.
  Admission admit(std::string_view id, std::uint64_t resume_session, std::span<const Prefix> prefixes,
                  std::uint64_t fresh_id) const;
  // Records the outcome of an admission (create or resume with new
  // prefixes); route() answers `session` (not owned) for its prefixes.
  void insert(std::uint64_t session_id, std::string_view id, std::span<const Prefix> prefixes, Session* session);
  void erase(std::uint64_t session_id);

  Session* route(std::uint8_t family, const std::uint8_t* dst) const;  // nullptr: no CPE

  std::size_t size() const { return by_session_.size(); }
  std::uint64_t session_of(std::string_view id) const;  // 0: none

 private:
  struct Entry {
    std::string id;
    std::vector<RawPrefix> prefixes;
    Session* session = nullptr;
  };
  void index(Session* s, const Entry& e, bool add);

  std::size_t max_;
  std::unordered_map<std::uint64_t, Entry> by_session_;
  std::map<std::string, std::uint64_t, std::less<>> by_id_;
  std::unordered_map<RawPrefix, Session*, RawPrefixHash> routes_;
  std::array<std::map<std::uint8_t, std::size_t, std::greater<>>, 2> lengths_;  // per family: length -> prefixes
};

}  // namespace tunnel
