// The handshake messages' bodies (handshake_codec.hpp): encoders and decoders
// only. No OpenSSL here, so the fuzz build compiles this file alone.
#include <tunnel/control_wire.hpp>
#include <tunnel/handshake_codec.hpp>
#include <tunnel/wire.hpp>

#include <algorithm>
#include <cstring>

namespace tunnel::hs {
namespace {

void put32(std::vector<std::uint8_t>& o, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<std::uint8_t>(v >> s));
}
void put64(std::vector<std::uint8_t>& o, std::uint64_t v) {
  put32(o, static_cast<std::uint32_t>(v >> 32));
  put32(o, static_cast<std::uint32_t>(v));
}

// Bounds-checked reader: every get fails (and stays failed) past the end.
struct Reader {
  std::span<const std::uint8_t> b;
  std::size_t off = 0;
  bool ok = true;
  bool need(std::size_t n) {
    if (!ok || b.size() - off < n) ok = false;
    return ok;
  }
  std::uint8_t u8() { return need(1) ? b[off++] : 0; }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | b[off++];
    return v;
  }
  std::uint64_t u64() {
    const std::uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  template <std::size_t N>
  void bytes(std::array<std::uint8_t, N>& a) {
    if (!need(N)) return;
    std::memcpy(a.data(), b.data() + off, N);
    off += N;
  }
};

}  // namespace

bool valid_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

void encode(const Challenge& c, std::vector<std::uint8_t>& out) {
  out.insert(out.end(), c.nonce.begin(), c.nonce.end());
  if (c.max_version != 0) {
    out.push_back(c.min_version);
    out.push_back(c.max_version);
  }
}

bool valid_group(std::string_view name) noexcept { return control::valid_topic(name); }

std::uint8_t choose_version(const Challenge& c, std::uint8_t ours) {
  const std::uint8_t lo = c.max_version ? c.min_version : 3, hi = c.max_version ? c.max_version : 3;
  const std::uint8_t v = std::min(ours, hi);
  return v >= lo && v >= wire::kMinVersion ? v : 0;
}

void encode(const Hello& h, std::uint8_t version, std::vector<std::uint8_t>& out) {
  put32(out, h.capabilities);
  out.insert(out.end(), h.nonce.begin(), h.nonce.end());
  put64(out, h.resume_session);
  put64(out, h.resume_rx_dsn);
  if (version >= 4) out.push_back(h.link);
  out.push_back(static_cast<std::uint8_t>(h.id.size()));
  out.insert(out.end(), h.id.begin(), h.id.end());
  out.push_back(static_cast<std::uint8_t>(h.prefixes.size()));
  for (const auto& p : h.prefixes) {
    out.push_back(p.addr.is_v4() ? 4 : 6);
    out.push_back(static_cast<std::uint8_t>(p.length));
    if (p.addr.is_v4()) {
      const auto b = p.addr.to_v4().to_bytes();
      out.insert(out.end(), b.begin(), b.end());
    } else {
      const auto b = p.addr.to_v6().to_bytes();
      out.insert(out.end(), b.begin(), b.end());
    }
  }
  if (version >= 4) {
    out.push_back(static_cast<std::uint8_t>(h.groups.size()));
    for (const auto& g : h.groups) {
      out.push_back(static_cast<std::uint8_t>(g.size()));
      out.insert(out.end(), g.begin(), g.end());
    }
    out.push_back(h.cipher);
    out.push_back(h.protection);
  }
  out.insert(out.end(), h.proof.begin(), h.proof.end());
}

void encode(const HelloAck& a, std::uint8_t version, std::vector<std::uint8_t>& out) {
  put64(out, a.session_id);
  put64(out, a.rx_dsn);
  out.push_back(a.resumed ? 1 : 0);
  put32(out, a.heartbeat_ms);
  if (version >= 4) {
    out.push_back(static_cast<std::uint8_t>(a.gateway_id.size()));
    out.insert(out.end(), a.gateway_id.begin(), a.gateway_id.end());
    out.push_back(a.cipher);
    out.push_back(a.protection);
  }
  out.insert(out.end(), a.proof.begin(), a.proof.end());
}

std::optional<Challenge> decode_challenge(std::span<const std::uint8_t> body, std::string& why) {
  Reader r{body};
  Challenge c;
  r.bytes(c.nonce);
  if (!r.ok) {
    why = "challenge shorter than its nonce";
    return std::nullopt;
  }
  if (body.size() - r.off >= 2) {
    c.min_version = r.u8();
    c.max_version = r.u8();
    if (c.min_version == 0 || c.min_version > c.max_version) {
      why = "challenge offers an empty version range";
      return std::nullopt;
    }
  }
  return c;  // later versions may append fields
}

std::optional<Hello> decode_hello(std::span<const std::uint8_t> body, std::uint8_t version, std::string& why) {
  Reader r{body};
  Hello h;
  h.capabilities = r.u32();
  r.bytes(h.nonce);
  h.resume_session = r.u64();
  h.resume_rx_dsn = r.u64();
  if (version >= 4) h.link = r.u8();
  if (r.ok && h.link >= kMaxLinks) {
    why = "link index out of range";
    return std::nullopt;
  }
  const std::size_t id_len = r.u8();
  if (r.need(id_len)) {
    h.id.assign(reinterpret_cast<const char*>(body.data() + r.off), id_len);
    r.off += id_len;
  }
  if (r.ok && !valid_id(h.id)) {
    why = "id must be 1..64 printable ASCII characters";
    return std::nullopt;
  }
  const std::size_t np = r.u8();
  if (np > kMaxPrefixes) {
    why = "more than 32 prefixes";
    return std::nullopt;
  }
  for (std::size_t i = 0; i < np && r.ok; ++i) {
    const std::uint8_t fam = r.u8();
    const unsigned len = r.u8();
    Prefix p;
    if (fam == 4 && len <= 32 && r.need(4)) {
      boost::asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), body.data() + r.off, 4);
      r.off += 4;
      p.addr = boost::asio::ip::address_v4(b);
    } else if (fam == 6 && len <= 128 && r.need(16)) {
      boost::asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), body.data() + r.off, 16);
      r.off += 16;
      p.addr = boost::asio::ip::address_v6(b);
    } else {
      if (r.ok) why = "bad prefix family or length";
      r.ok = false;
      break;
    }
    p.length = len;
    h.prefixes.push_back(p);
  }
  if (version >= 4 && r.ok) {
    const std::size_t ng = r.u8();
    if (ng > kMaxGroups) {
      why = "more than 16 groups";
      return std::nullopt;
    }
    for (std::size_t i = 0; i < ng && r.ok; ++i) {
      const std::size_t n = r.u8();
      if (!r.need(n)) break;
      std::string g(reinterpret_cast<const char*>(body.data() + r.off), n);
      r.off += n;
      if (!valid_group(g)) {
        why = "a group name must be 1..64 characters of [A-Za-z0-9._-], not starting with '-'";
        return std::nullopt;
      }
      h.groups.push_back(std::move(g));
    }
    h.cipher = r.u8();
    h.protection = r.u8();
  }
  r.bytes(h.proof);
  if (!r.ok || r.off != body.size()) {
    if (why.empty()) why = r.ok ? "trailing bytes after the proof" : "hello truncated";
    return std::nullopt;
  }
  return h;
}

std::optional<HelloAck> decode_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version,
                                         std::string& why) {
  Reader r{body};
  HelloAck a;
  a.session_id = r.u64();
  a.rx_dsn = r.u64();
  const std::uint8_t flags = r.u8();
  a.resumed = flags & 1;
  a.heartbeat_ms = r.u32();
  if (version >= 4) {
    const std::size_t n = r.u8();
    if (r.need(n)) {
      a.gateway_id.assign(reinterpret_cast<const char*>(body.data() + r.off), n);
      r.off += n;
    }
    if (r.ok && !valid_id(a.gateway_id)) {
      why = "gateway id must be 1..64 printable ASCII characters";
      return std::nullopt;
    }
    a.cipher = r.u8();
    a.protection = r.u8();
  }
  r.bytes(a.proof);
  if (!r.ok || r.off != body.size() || (flags & ~1u) != 0 || a.session_id == 0) {
    why = !r.ok ? "hello-ack truncated" : r.off != body.size() ? "trailing bytes after the proof"
          : a.session_id == 0 ? "session id 0" : "unknown flags";
    return std::nullopt;
  }
  return a;
}

}  // namespace tunnel::hs
