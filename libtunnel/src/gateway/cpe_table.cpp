#include <tunnel/cpe_table.hpp>
#include <tunnel/handshake.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel {
namespace {
std::size_t addr_bytes(std::uint8_t family) { return family == 4 ? 4 : 16; }
int fam_index(std::uint8_t family) { return family == 4 ? 0 : 1; }
// Clears the bits after `len` in a 16-byte address.
void mask(std::array<std::uint8_t, 16>& a, unsigned len) {
  std::size_t full = len / 8;
  if (len % 8) {
    a[full] &= static_cast<std::uint8_t>(0xffu << (8 - len % 8));
    ++full;
  }
  if (full < a.size()) std::memset(a.data() + full, 0, a.size() - full);
}
}  // namespace

RawPrefix RawPrefix::from(const Prefix& p) {
  RawPrefix r;
  if (p.addr.is_v4()) {
    r.family = 4;
    const auto b = p.addr.to_v4().to_bytes();
    std::memcpy(r.net.data(), b.data(), 4);
  } else {
    r.family = 6;
    const auto b = p.addr.to_v6().to_bytes();
    std::memcpy(r.net.data(), b.data(), 16);
  }
  r.length = static_cast<std::uint8_t>(std::min<unsigned>(p.length, r.family == 4 ? 32 : 128));
  mask(r.net, r.length);
  return r;
}

bool RawPrefix::contains(std::uint8_t fam, const std::uint8_t* addr) const {
  if (fam != family) return false;
  const std::size_t full = length / 8;
  if (std::memcmp(net.data(), addr, full) != 0) return false;
  const unsigned rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (addr[full] & mask) == net[full];
}

bool RawPrefix::overlaps(const RawPrefix& o) const {
  if (family != o.family) return false;
  return length <= o.length ? contains(o.family, o.net.data()) : o.contains(family, net.data());
}

std::size_t RawPrefixHash::operator()(const RawPrefix& p) const noexcept {
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, p.net.data(), 8);
  std::memcpy(&b, p.net.data() + 8, 8);
  std::uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
  return static_cast<std::size_t>(h ^ (std::uint64_t{p.family} << 56) ^ (std::uint64_t{p.length} << 48));
}

bool packet_addrs(std::span<const std::uint8_t> pkt, PacketAddrs& out) {
  if (pkt.empty()) return false;
  const unsigned v = pkt[0] >> 4;
  if (v == 4 && pkt.size() >= 20) {
    out = {4, pkt.data() + 12, pkt.data() + 16};
    return true;
  }
  if (v == 6 && pkt.size() >= 40) {
    out = {6, pkt.data() + 8, pkt.data() + 24};
    return true;
  }
  return false;
}

CpeTable::Admission CpeTable::admit(std::string_view id, std::uint64_t resume_session,
                                    std::span<const Prefix> prefixes, std::uint64_t fresh_id) const {
  Admission a;
  const std::uint64_t existing = session_of(id);
  if (resume_session != 0 && resume_session == existing) {
    a.verdict = Verdict::resume;
    a.session_id = existing;
  } else {
    if (existing == 0 && by_session_.size() >= max_) {
      a.error = hs::kErrFull;
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
          a.error = hs::kErrPrefixInUse;
          return a;
        }
    }
  }
  return a;
}

void CpeTable::index(std::uint64_t sid, const Entry& e, bool add) {
  for (const auto& p : e.prefixes) {
    auto& lens = lengths_[static_cast<std::size_t>(fam_index(p.family))];
    if (add) {
      routes_[p] = sid;
      ++lens[p.length];
    } else {
      routes_.erase(p);
      if (--lens[p.length] == 0) lens.erase(p.length);
    }
  }
}

void CpeTable::insert(std::uint64_t session_id, std::string_view id, std::span<const Prefix> prefixes) {
  erase(session_id);
  if (auto old = session_of(id)) erase(old);
  Entry e{std::string(id), {}};
  for (const auto& p : prefixes) {
    RawPrefix rp = RawPrefix::from(p);
    if (std::find(e.prefixes.begin(), e.prefixes.end(), rp) == e.prefixes.end()) e.prefixes.push_back(rp);
  }
  index(session_id, e, true);
  by_id_[e.id] = session_id;
  by_session_.emplace(session_id, std::move(e));
}

void CpeTable::erase(std::uint64_t session_id) {
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  index(session_id, it->second, false);
  by_id_.erase(it->second.id);
  by_session_.erase(it);
}

std::uint64_t CpeTable::route(std::uint8_t family, const std::uint8_t* dst) const {
  RawPrefix key;
  key.family = family;
  const std::size_t n = addr_bytes(family);
  for (const auto& [len, count] : lengths_[static_cast<std::size_t>(fam_index(family))]) {
    key.length = len;
    std::memcpy(key.net.data(), dst, n);
    mask(key.net, len);
    if (auto it = routes_.find(key); it != routes_.end()) return it->second;
  }
  return 0;
}

bool CpeTable::source_allowed(std::uint64_t session_id, std::uint8_t family, const std::uint8_t* src) const {
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return false;
  return std::any_of(it->second.prefixes.begin(), it->second.prefixes.end(),
                     [&](const RawPrefix& p) { return p.contains(family, src); });
}

std::uint64_t CpeTable::session_of(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? 0 : it->second;
}

}  // namespace tunnel
