// Pre-shared keys: parsing, the key files of both ends, and memory that holds
// key bytes (docs/security.md).
//
// A key is at least 32 random bytes written as hex digits (64 to 128 of them,
// an even number); generate one with `openssl rand -hex 32`. Text keys are
// refused: a passphrase would let one captured handshake be attacked offline.
//
// Key files are opened with O_NOFOLLOW and must be regular files owned by root
// or by the running user, with no permission bits for group or others
// (chmod 600). Blank lines and lines whose first non-blank character is '#'
// are skipped in both ends' files.
//
//   CPE file:     one line, the key.
//   gateway file: one line per CPE,
//                   ID KEY PREFIX[,PREFIX...]   that CPE's key, and the inner
//                                               prefixes it may claim
//                   ID KEY                      that CPE's key, no prefix list
//                 either form optionally ending in
//                   groups=[NAME[,NAME...]]     the control message groups it
//                                               may announce (none when empty)
//                 and at most one line with only
//                   KEY                         the key for any other id
//
// Key bytes live in OpenSSL's secure heap: locked against swapping, left out
// of core dumps, and wiped (OPENSSL_cleanse) when a key is replaced or
// destroyed. When locking is not possible (RLIMIT_MEMLOCK, or the heap is
// full) the key still works and a warning is logged once.
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/key_view.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel::keys {

inline constexpr std::size_t kMinKeyBytes = 32;
inline constexpr std::size_t kMaxKeyBytes = 64;

// Owns secret bytes in locked memory (see the file comment). Move-only; the
// bytes are wiped when the object is destroyed or assigned over. A
// default-constructed key is empty ("no key").
class SecretKey {
 public:
  SecretKey() noexcept = default;
  // Copies `bytes` into locked memory. Throws std::bad_alloc.
  explicit SecretKey(std::span<const std::uint8_t> bytes);
  SecretKey(SecretKey&& o) noexcept;
  SecretKey& operator=(SecretKey&& o) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  ~SecretKey();

  // An independent copy in its own locked memory.
  SecretKey clone() const { return SecretKey(view()); }

  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const std::uint8_t* begin() const noexcept { return data_; }
  const std::uint8_t* end() const noexcept { return data_ + size_; }
  KeyView view() const noexcept { return {data_, size_}; }
  operator KeyView() const noexcept { return view(); }

  // True when this key's bytes are in locked memory.
  bool locked() const noexcept { return locked_; }

 private:
  void release() noexcept;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool locked_ = false;
};

// Parses a key written as 64..128 hex digits. Throws std::invalid_argument
// with a message for the user (saying how to generate a key) on anything else.
SecretKey parse_key(std::string_view text);

// The CPE's key file. Throws std::runtime_error naming the file (and line) on
// an unsafe file, a missing or second key, or a malformed key.
SecretKey load_key_file(const std::string& path);

// One CPE's entry in the gateway's key file.
struct Binding {
  SecretKey key;
  std::vector<Prefix> prefixes;     // the prefixes it may claim; see `bound`
  bool bound = false;               // true: the line had a prefix list
  std::vector<std::string> groups;  // the groups it may announce; see `groups_bound`
  bool groups_bound = false;        // true: the line had groups= (maybe empty)
};

// Whether a CPE may claim the prefixes, or announce the groups, in its HELLO.
enum class Admission : std::uint8_t {
  allowed,             // every claimed prefix (or group) lies within the id's list
  prefix_not_allowed,  // a claimed prefix lies outside it, or the id has no
                       // list (or used the any-id key) and unbound prefixes
                       // are not allowed
  group_not_allowed,   // an announced group is not in the id's groups= list
};
// A refusal for prefix_not_allowed is sent as Fault::prefix_not_allowed
// (fault.hpp).

// The gateway's key file, loaded. Immutable once loaded; a reload builds a
// new table (reload_key_table).
struct KeyTable {
  std::map<std::string, Binding, std::less<>> by_id;
  std::optional<Binding> any;  // the key for ids not in by_id

  // The key for `id`: its own, else the any-id key; nullptr when neither.
  const SecretKey* find(std::string_view id) const noexcept;

  // The key to verify `id`'s proof with: find(id), or when there is none a
  // random key fixed for this table, so that an unknown id costs the same
  // work as a wrong proof and fails the same way (Fault::auth_failed for
  // both). Empty only for a table that was not loaded from a file.
  const SecretKey& key_or_decoy(std::string_view id) const noexcept;

  // Whether `id`, already authenticated, may claim `claimed`. A prefix is
  // within a listed one when it has the same family, is at least as long, and
  // agrees on the listed prefix's bits. An empty claim is always allowed.
  // `allow_unbound` (--allow-unbound-prefixes): an id without a list, or one
  // that authenticated with the any-id key, may claim any prefix.
  Admission admit(std::string_view id, std::span<const Prefix> claimed, bool allow_unbound) const;

  // Whether `id`, already authenticated, may announce `groups`: allowed when
  // its line has no groups= (or it used the any-id key), else only groups
  // that list names (group_not_allowed otherwise). Announcing none is always
  // allowed.
  Admission admit_groups(std::string_view id, std::span<const std::string> groups) const;

  // Number of keys: ids plus one when there is an any-id key.
  std::size_t size() const noexcept { return by_id.size() + (any ? 1 : 0); }

  SecretKey decoy;  // filled by the loaders; see key_or_decoy
};

// Loads the gateway's key file. Throws std::runtime_error naming the file and
// line on an unsafe file, a malformed line (a bad prefix or group name, an
// unknown or repeated field), a repeated id, a second any-id key, or a file
// without keys.
KeyTable load_key_table(const std::string& path);

// Loads the gateway's key file again (SIGHUP): either a whole new table, or
// nullptr and `error` set to why (the caller keeps its current table). Never
// a partly loaded table. Does not throw.
struct Reload {
  std::shared_ptr<const KeyTable> table;
  std::string error;
};
Reload reload_key_table(const std::string& path) noexcept;

// True when `inner` lies within `outer` (see KeyTable::admit).
bool prefix_within(const Prefix& inner, const Prefix& outer) noexcept;

}  // namespace tunnel::keys

namespace tunnel::hs {
// The handshake's names for the key types (handshake.hpp).
using Key = keys::SecretKey;
using KeyView = keys::KeyView;
using keys::KeyTable;
using keys::load_key_file;
using keys::load_key_table;
using keys::parse_key;
}  // namespace tunnel::hs
