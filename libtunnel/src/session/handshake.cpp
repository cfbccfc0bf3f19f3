#include <tunnel/control_wire.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/wire.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace tunnel::hs {
namespace {

std::string hello_label(std::uint8_t version) { return "tunneld/" + std::to_string(version) + " hello"; }
std::string hello_ack_label(std::uint8_t version) { return "tunneld/" + std::to_string(version) + " hello-ack"; }

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

Proof hmac(const Key& key, std::initializer_list<std::span<const std::uint8_t>> parts) {
  Proof out{};
  if (key.empty()) return out;
  // EVP_MAC (OpenSSL 3): HMAC_CTX is deprecated there.
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  bool ok = ctx && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1;
  for (auto p : parts) ok = ok && EVP_MAC_update(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
  return out;
}

std::span<const std::uint8_t> label(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool proof_matches(std::span<const std::uint8_t> body, const Proof& want) {
  if (body.size() < kProofSize) return false;
  return CRYPTO_memcmp(body.data() + body.size() - kProofSize, want.data(), kProofSize) == 0;
}

bool printable_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::ifstream open_private(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error("key file " + path + ": " + std::strerror(errno));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    throw std::runtime_error("key file " + path + " is readable by group or others; chmod 600 it");
  std::ifstream f(path);
  if (!f) throw std::runtime_error("key file " + path + ": cannot open");
  return f;
}

}  // namespace

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
  if (r.ok && !printable_id(h.id)) {
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
    if (r.ok && !printable_id(a.gateway_id)) {
      why = "gateway id must be 1..64 printable ASCII characters";
      return std::nullopt;
    }
  }
  r.bytes(a.proof);
  if (!r.ok || r.off != body.size() || (flags & ~1u) != 0 || a.session_id == 0) {
    why = !r.ok ? "hello-ack truncated" : r.off != body.size() ? "trailing bytes after the proof"
          : a.session_id == 0 ? "session id 0" : "unknown flags";
    return std::nullopt;
  }
  return a;
}

void sign_hello(std::span<std::uint8_t> body, std::uint8_t version, const Key& key, const Nonce& server_nonce) {
  if (body.size() < kProofSize) throw std::invalid_argument("hello body shorter than a proof");
  const auto signed_part = body.first(body.size() - kProofSize);
  const Proof p = hmac(key, {label(hello_label(version)), server_nonce, signed_part});
  std::memcpy(body.data() + signed_part.size(), p.data(), kProofSize);
}

void sign_hello_ack(std::span<std::uint8_t> body, std::uint8_t version, const Key& key, const Nonce& client_nonce,
                    const Nonce& server_nonce) {
  if (body.size() < kProofSize) throw std::invalid_argument("hello-ack body shorter than a proof");
  const auto signed_part = body.first(body.size() - kProofSize);
  const Proof p = hmac(key, {label(hello_ack_label(version)), client_nonce, server_nonce, signed_part});
  std::memcpy(body.data() + signed_part.size(), p.data(), kProofSize);
}

bool verify_hello(std::span<const std::uint8_t> body, std::uint8_t version, const Key& key,
                  const Nonce& server_nonce) {
  if (body.size() < kProofSize || key.empty()) return false;
  return proof_matches(body,
                       hmac(key, {label(hello_label(version)), server_nonce, body.first(body.size() - kProofSize)}));
}

bool verify_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version, const Key& key,
                      const Nonce& client_nonce, const Nonce& server_nonce) {
  if (body.size() < kProofSize || key.empty()) return false;
  return proof_matches(body, hmac(key, {label(hello_ack_label(version)), client_nonce, server_nonce,
                                        body.first(body.size() - kProofSize)}));
}

Nonce random_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return n;
}

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) throw std::runtime_error("RAND_bytes failed");
  return v;
}

Key parse_key(std::string_view text) {
  if (text.size() == 64) {
    Key k;
    for (std::size_t i = 0; i < 64; i += 2) {
      const int hi = hexval(text[i]), lo = hexval(text[i + 1]);
      if (hi < 0 || lo < 0) {
        k.clear();
        break;
      }
      k.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
    if (k.size() == 32) return k;
  }
  if (text.size() < kMinKeyBytes)
    throw std::invalid_argument("key is shorter than 16 bytes (use 64 hex digits, e.g. from `openssl rand -hex 32`)");
  return Key(text.begin(), text.end());
}

Key load_key_file(const std::string& path) {
  auto f = open_private(path);
  std::string line;
  std::getline(f, line);
  try {
    return parse_key(trim(line));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("key file " + path + ": " + e.what());
  }
}

const Key* KeyTable::find(std::string_view id) const {
  if (auto it = by_id.find(id); it != by_id.end()) return &it->second;
  return any ? &*any : nullptr;
}

KeyTable load_key_table(const std::string& path) {
  auto f = open_private(path);
  KeyTable t;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto where = "key file " + path + " line " + std::to_string(n) + ": ";
    try {
      const auto sp = line.find_first_of(" \t");
      if (sp == std::string::npos) {
        if (t.any) throw std::invalid_argument("a second key for any id");
        t.any = parse_key(line);
        continue;
      }
      std::string id = line.substr(0, sp);
      if (!printable_id(id)) throw std::invalid_argument("id must be 1..64 printable ASCII characters");
      if (t.by_id.count(id)) throw std::invalid_argument("id " + id + " appears twice");
      t.by_id.emplace(id, parse_key(trim(line.substr(sp))));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
  }
  if (t.by_id.empty() && !t.any) throw std::runtime_error("key file " + path + " holds no key");
  return t;
}

}  // namespace tunnel::hs
