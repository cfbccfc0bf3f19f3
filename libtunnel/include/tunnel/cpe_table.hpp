// The gateway's table of CPE sessions, pure (no I/O) so that admission,
// routing and anti-spoofing are unit-tested on their own.
//
// - admit(): given a HELLO whose proof checked out, decides whether it
//   resumes a held session, starts a new one (replacing an older session of
//   the same CPE id), or is refused (gateway full, prefix claimed by another
//   CPE). Prefixes of different CPEs may not overlap, so every inner address
//   belongs to at most one CPE.
// - route(): the session that serves an inner destination address, by
//   longest-prefix match: one hash lookup per prefix length in use.
// - source_allowed(): whether a packet from a session may carry that source
//   address (anti-spoofing).
#pragma once

#include <tunnel/address.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tunnel {

// A prefix in the form the per-packet code compares: family 4 or 6, the
// network's bytes with host bits cleared.
struct RawPrefix {
  std::uint8_t family = 0;
  std::uint8_t length = 0;
  std::array<std::uint8_t, 16> net{};
  bool operator==(const RawPrefix&) const = default;
  static RawPrefix from(const Prefix& p);
  bool contains(std::uint8_t family, const std::uint8_t* addr) const;
  bool overlaps(const RawPrefix& o) const;
};

struct RawPrefixHash {
  std::size_t operator()(const RawPrefix& p) const noexcept;
};

// Source and destination of an IP packet as raw bytes; false if too short.
struct PacketAddrs {
  std::uint8_t family = 0;
  const std::uint8_t* src = nullptr;
  const std::uint8_t* dst = nullptr;
};
bool packet_addrs(std::span<const std::uint8_t> pkt, PacketAddrs& out);

class CpeTable {
 public:
  enum class Verdict { create, resume, reject };
  struct Admission {
    Verdict verdict = Verdict::reject;
    std::uint64_t session_id = 0;       // resume: the held session; create: the new ID
    std::uint64_t replaces = 0;         // create: an older session of the same id to destroy first
    std::string_view error;             // reject: the ERROR frame's reason
  };

  explicit CpeTable(std::size_t max_cpes) : max_(max_cpes) {}

  // `fresh_id` is the session ID to assign when a new session is created.
  Admission admit(std::string_view id, std::uint64_t resume_session, std::span<const Prefix> prefixes,
                  std::uint64_t fresh_id) const;
  // Records the outcome of an admission (create or resume with new prefixes).
  void insert(std::uint64_t session_id, std::string_view id, std::span<const Prefix> prefixes);
  void erase(std::uint64_t session_id);

  std::uint64_t route(std::uint8_t family, const std::uint8_t* dst) const;  // 0: no CPE
  bool source_allowed(std::uint64_t session_id, std::uint8_t family, const std::uint8_t* src) const;

  std::size_t size() const { return by_session_.size(); }
  std::uint64_t session_of(std::string_view id) const;  // 0: none

 private:
  struct Entry {
    std::string id;
    std::vector<RawPrefix> prefixes;
  };
  void index(std::uint64_t sid, const Entry& e, bool add);

  std::size_t max_;
  std::unordered_map<std::uint64_t, Entry> by_session_;
  std::map<std::string, std::uint64_t, std::less<>> by_id_;
  std::unordered_map<RawPrefix, std::uint64_t, RawPrefixHash> routes_;
  std::array<std::map<std::uint8_t, std::size_t, std::greater<>>, 2> lengths_;  // per family: length -> prefixes
};

}  // namespace tunnel
