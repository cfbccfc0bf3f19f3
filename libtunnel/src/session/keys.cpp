#include <tunnel/handshake_codec.hpp>
#include <tunnel/keys.hpp>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

namespace tunnel::keys {
namespace {

// Secure heap size: room for 16384 keys of 32 bytes, i.e. two gateway tables
// of 8192 CPEs while a reload builds the second. Must be a power of two.
constexpr std::size_t kSecureHeapBytes = 512 * 1024;
constexpr std::size_t kSecureHeapMinAlloc = 32;
// Largest key file read; a bigger one is refused.
constexpr std::size_t kMaxFileBytes = 4u << 20;

// 1: keys are locked; 0: they are not (a warning has been logged).
int secure_heap_state() {
  static std::once_flag once;
  static int state = 0;
  std::call_once(once, [] {
    if (CRYPTO_secure_malloc_initialized()) {
      state = 1;
      return;
    }
    const int r = CRYPTO_secure_malloc_init(kSecureHeapBytes, kSecureHeapMinAlloc);
    state = r == 1 ? 1 : 0;
    if (r == 2)
      spdlog::warn("keys: memory for keys could not be locked against swapping (RLIMIT_MEMLOCK {}?); "
                   "keys are kept in ordinary memory",
                   kSecureHeapBytes);
    else if (r == 0)
      spdlog::warn("keys: OpenSSL's secure heap is unavailable; keys are kept in ordinary memory");
  });
  return state;
}

void warn_unlocked_once() {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) spdlog::warn("keys: the locked key memory is full; further keys are not locked");
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the first whitespace-separated token of `s`.
std::string_view next_token(std::string_view& s) {
  s = trim(s);
  std::size_t n = 0;
  while (n < s.size() && !is_space(s[n])) ++n;
  const auto t = s.substr(0, n);
  s.remove_prefix(n);
  s = trim(s);
  return t;
}

// The whole file, read through a descriptor that passed the checks in the
// file comment of keys.hpp. The returned buffer holds key text: the caller
// wipes it (Wiped below).
std::vector<char> read_private(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) throw std::runtime_error("key file " + path + " is a symbolic link; name the file itself");
    throw std::runtime_error("key file " + path + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error("key file " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("key file " + path + " is not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    throw std::runtime_error("key file " + path + " is accessible by group or others; chmod 600 it");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    throw std::runtime_error("key file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                             ", neither root nor the user tunneld runs as");
  if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes)
    throw std::runtime_error("key file " + path + " is larger than 4 MiB");
  std::vector<char> buf(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      OPENSSL_cleanse(buf.data(), buf.size());
      throw std::runtime_error("key file " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == buf.size()) {
      OPENSSL_cleanse(buf.data(), buf.size());
      throw std::runtime_error("key file " + path + " changed while it was read");
    }
  }
  buf.resize(got);
  return buf;
}

// Wipes a buffer of key text when it goes out of scope.
struct Wiped {
  std::vector<char> buf;
  ~Wiped() { OPENSSL_cleanse(buf.data(), buf.size()); }
};

// Calls f(line_number, line) for each line that is not blank or a comment.
template <typename F>
void for_each_line(const std::vector<char>& text, F&& f) {
  std::string_view rest(text.data(), text.size());
  for (int n = 1; !rest.empty(); ++n) {
    const auto nl = rest.find('\n');
    auto line = trim(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    f(n, line);
  }
}

std::vector<Prefix> parse_prefix_list(std::string_view s) {
  std::vector<Prefix> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (item.empty()) throw std::invalid_argument("empty prefix in the list");
    out.push_back(parse_prefix(item));
    s.remove_prefix(comma == std::string_view::npos ? s.size() : comma + 1);
    if (comma != std::string_view::npos && s.empty()) throw std::invalid_argument("list ends with a comma");
  }
  if (out.size() > hs::kMaxPrefixes) throw std::invalid_argument("more than 32 prefixes");
  return out;
}

constexpr std::string_view kGroupsField = "groups=";
constexpr const char* kLineForm = "a line is ID KEY [PREFIX[,PREFIX...]] [groups=[NAME[,NAME...]]]";

// Takes a `groups=[NAME[,NAME...]]` field, which ends the line, off `rest`
// into `b`; spaces around the commas are allowed, as in the prefix list.
void take_groups(std::string_view& rest, Binding& b) {
  std::size_t at = std::string_view::npos;
  for (auto i = rest.find(kGroupsField); i != std::string_view::npos; i = rest.find(kGroupsField, i + 1)) {
    if (i > 0 && !is_space(rest[i - 1])) continue;
    if (at != std::string_view::npos) throw std::invalid_argument("groups= appears twice");
    at = i;
  }
  if (at == std::string_view::npos) return;
  auto list = trim(rest.substr(at + kGroupsField.size()));
  rest = trim(rest.substr(0, at));
  b.groups_bound = true;  // an empty list: no group at all
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim(list.substr(0, comma));
    if (item.empty()) throw std::invalid_argument("empty group name in groups=");
    if (!hs::valid_group(item))
      throw std::invalid_argument("bad group name '" + std::string(item) +
                                  "' in groups= (1..64 characters of [A-Za-z0-9._-], not starting with '-'; "
                                  "groups= ends the line)");
    b.groups.emplace_back(item);
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    if (comma != std::string_view::npos && list.empty()) throw std::invalid_argument("groups= ends with a comma");
  }
}

// A NAME=VALUE token where a prefix list is expected: a misspelt field.
void refuse_unknown_field(std::string_view prefixes) {
  const auto eq = prefixes.find('=');
  if (eq == std::string_view::npos) return;
  std::size_t from = eq, to = eq;
  while (from > 0 && !is_space(prefixes[from - 1])) --from;
  while (to < prefixes.size() && !is_space(prefixes[to])) ++to;
  throw std::invalid_argument("unknown field '" + std::string(prefixes.substr(from, to - from)) + "': " + kLineForm);
}

SecretKey random_key() {
  std::uint8_t b[kMinKeyBytes];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  SecretKey k(b);
  OPENSSL_cleanse(b, sizeof b);
  return k;
}

}  // namespace

// ---------------------------------------------------------------- SecretKey

SecretKey::SecretKey(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  const bool heap = secure_heap_state() == 1;
  void* p = OPENSSL_secure_malloc(bytes.size());
  if (p && heap && CRYPTO_secure_allocated(p)) {
    locked_ = true;
  } else {
    if (p) OPENSSL_secure_free(p);
    if (heap) warn_unlocked_once();
    p = OPENSSL_malloc(bytes.size());
    if (!p) throw std::bad_alloc();
  }
  data_ = static_cast<std::uint8_t*>(p);
  size_ = bytes.size();
  std::memcpy(data_, bytes.data(), size_);
}

SecretKey::SecretKey(SecretKey&& o) noexcept : data_(o.data_), size_(o.size_), locked_(o.locked_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.locked_ = false;
}

SecretKey& SecretKey::operator=(SecretKey&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    size_ = o.size_;
    locked_ = o.locked_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.locked_ = false;
  }
  return *this;
}

SecretKey::~SecretKey() { release(); }

void SecretKey::release() noexcept {
  if (!data_) return;
  OPENSSL_cleanse(data_, size_);
  if (locked_)
    OPENSSL_secure_free(data_);
  else
    OPENSSL_free(data_);
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

// ---------------------------------------------------------------- parsing

SecretKey parse_key(std::string_view text) {
  text = trim(text);
  bool hex = text.size() % 2 == 0 && !text.empty();
  for (char c : text) hex = hex && hexval(c) >= 0;
  if (!hex || text.size() < 2 * kMinKeyBytes || text.size() > 2 * kMaxKeyBytes)
    throw std::invalid_argument(
        "a key must be 64 to 128 hex digits (at least 32 random bytes); text keys are not accepted. "
        "Generate one with `openssl rand -hex 32`");
  std::uint8_t b[kMaxKeyBytes];
  const std::size_t n = text.size() / 2;
  for (std::size_t i = 0; i < n; ++i)
    b[i] = static_cast<std::uint8_t>(hexval(text[2 * i]) * 16 + hexval(text[2 * i + 1]));
  SecretKey k(std::span<const std::uint8_t>(b, n));
  OPENSSL_cleanse(b, sizeof b);
  return k;
}

SecretKey load_key_file(const std::string& path) {
  Wiped text{read_private(path)};
  SecretKey key;
  for_each_line(text.buf, [&](int n, std::string_view line) {
    const auto where = "key file " + path + " line " + std::to_string(n) + ": ";
    if (!key.empty()) throw std::runtime_error(where + "a second key; the CPE's file holds one");
    try {
      key = parse_key(line);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
  });
  if (key.empty()) throw std::runtime_error("key file " + path + " holds no key");
  return key;
}

KeyTable load_key_table(const std::string& path) {
  Wiped text{read_private(path)};
  KeyTable t;
  for_each_line(text.buf, [&](int n, std::string_view line) {
    const auto where = "key file " + path + " line " + std::to_string(n) + ": ";
    try {
      std::string_view rest = line;
      const auto first = next_token(rest);
      if (rest.empty()) {  // "KEY": any id
        if (t.any) throw std::invalid_argument("a second key for any id");
        Binding any;
        any.key = parse_key(first);
        t.any.emplace(std::move(any));
        return;
      }
      if (rest.starts_with(kGroupsField))  // "KEY groups=..."
        throw std::invalid_argument(std::string("the any-id key binds no groups: ") + kLineForm);
      const std::string id(first);
      if (!hs::valid_id(id)) throw std::invalid_argument("id must be 1..64 printable ASCII characters");
      if (t.by_id.count(id)) throw std::invalid_argument("id " + id + " appears twice");
      Binding b;
      b.key = parse_key(next_token(rest));
      take_groups(rest, b);
      refuse_unknown_field(rest);
      if (!rest.empty()) {
        b.prefixes = parse_prefix_list(rest);
        b.bound = true;
      }
      t.by_id.emplace(id, std::move(b));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
  });
  if (t.by_id.empty() && !t.any) throw std::runtime_error("key file " + path + " holds no key");
  t.decoy = random_key();
  return t;
}

Reload reload_key_table(const std::string& path) noexcept {
  Reload r;
  try {
    r.table = std::make_shared<const KeyTable>(load_key_table(path));
  } catch (const std::exception& e) {
    r.table.reset();
    r.error = e.what();
  }
  return r;
}

// ---------------------------------------------------------------- lookups

const SecretKey* KeyTable::find(std::string_view id) const noexcept {
  if (auto it = by_id.find(id); it != by_id.end()) return &it->second.key;
  return any ? &any->key : nullptr;
}

const SecretKey& KeyTable::key_or_decoy(std::string_view id) const noexcept {
  const SecretKey* k = find(id);
  return k ? *k : decoy;
}

bool prefix_within(const Prefix& inner, const Prefix& outer) noexcept {
  if (inner.addr.is_v4() != outer.addr.is_v4() || inner.length < outer.length) return false;
  std::array<std::uint8_t, 16> a{}, b{};
  std::size_t width;
  if (inner.addr.is_v4()) {
    const auto x = inner.addr.to_v4().to_bytes(), y = outer.addr.to_v4().to_bytes();
    std::copy(x.begin(), x.end(), a.begin());
    std::copy(y.begin(), y.end(), b.begin());
    width = 32;
  } else {
    a = inner.addr.to_v6().to_bytes();
    b = outer.addr.to_v6().to_bytes();
    width = 128;
  }
  const std::size_t bits = std::min<std::size_t>(outer.length, width);
  const std::size_t whole = bits / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  if (bits % 8 == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff00u >> (bits % 8));
  return (a[whole] & mask) == (b[whole] & mask);
}

Admission KeyTable::admit(std::string_view id, std::span<const Prefix> claimed, bool allow_unbound) const {
  if (claimed.empty()) return Admission::allowed;
  const auto it = by_id.find(id);
  if (it == by_id.end() || !it->second.bound)
    return allow_unbound ? Admission::allowed : Admission::prefix_not_allowed;
  for (const auto& c : claimed) {
    bool inside = false;
    for (const auto& p : it->second.prefixes) inside = inside || prefix_within(c, p);
    if (!inside) return Admission::prefix_not_allowed;
  }
  return Admission::allowed;
}

Admission KeyTable::admit_groups(std::string_view id, std::span<const std::string> groups) const {
  if (groups.empty()) return Admission::allowed;
  const auto it = by_id.find(id);
  if (it == by_id.end() || !it->second.groups_bound) return Admission::allowed;
  const auto& allowed = it->second.groups;
  for (const auto& g : groups)
    if (std::find(allowed.begin(), allowed.end(), g) == allowed.end()) return Admission::group_not_allowed;
  return Admission::allowed;
}

}  // namespace tunnel::keys
