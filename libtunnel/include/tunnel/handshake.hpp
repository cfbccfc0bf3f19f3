// Session handshake (docs/protocol.md, "Handshake"): message bodies, proofs
// and the pre-shared key files. Pure: bytes in, values out; no sockets.
//
//   gateway                                CPE
//      | -- CHALLENGE(server nonce) ------> |
//      | <----- HELLO(id, prefixes, resume, client nonce, client proof) |
//      | -- HELLO_ACK(session, resume point, server proof) -> |   or ERROR(reason)
//
// client proof = HMAC-SHA256(key, "tunneld/V hello" | server nonce | HELLO body before the proof)
// server proof = HMAC-SHA256(key, "tunneld/V hello-ack" | client nonce | server nonce |
//                                 HELLO_ACK body before the proof)
// V is the connection's protocol version. The gateway sends CHALLENGE in
// version 3's header with the range it speaks appended (a version 3 CPE
// ignores it); the CPE picks the highest version both speak and sends HELLO
// in it; HELLO_ACK and every later frame use the same version.
// Each proof covers the other side's fresh nonce, so a recorded exchange is
// useless on a new connection, and every field it is sent with, so none can
// be changed in flight. Proofs are compared in constant time.
#pragma once

#include <tunnel/address.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel::hs {

inline constexpr std::size_t kNonceSize = 32;
inline constexpr std::size_t kProofSize = 32;
inline constexpr std::size_t kMaxIdLength = 64;
inline constexpr std::size_t kMaxPrefixes = 32;
inline constexpr std::size_t kMaxGroups = 16;  // version 4: control message groups in a HELLO
inline constexpr std::size_t kMinKeyBytes = 16;

using Nonce = std::array<std::uint8_t, kNonceSize>;
using Proof = std::array<std::uint8_t, kProofSize>;
using Key = std::vector<std::uint8_t>;  // empty: authentication disabled

// Capability bits a HELLO may carry. None is required by version 3.
inline constexpr std::uint32_t kCapUdpGso = 1u << 0;

struct Challenge {
  Nonce nonce{};
  // Versions the gateway speaks; 0 when it did not say (a version 3 gateway).
  std::uint8_t min_version = 0, max_version = 0;
};

// The version a CPE speaking [wire::kMinVersion, `ours`] picks for this
// challenge, or 0 when there is none.
std::uint8_t choose_version(const Challenge& c, std::uint8_t ours);

// Links a session may have (link 0 carries bulk data and opens the session).
inline constexpr unsigned kMaxLinks = 8;

struct Hello {
  std::uint32_t capabilities = 0;
  Nonce nonce{};
  std::uint64_t resume_session = 0;  // 0: a new session
  std::uint64_t resume_rx_dsn = 0;   // last DATA dsn the CPE received on this link in that session
  std::uint8_t link = 0;             // version 4: which link of the session this connection carries
  std::string id;                    // 1..64 bytes, printable ASCII
  std::vector<Prefix> prefixes;      // inner prefixes the CPE serves (sources it may use)
  // Version 4: the control message groups the CPE is in (`tunneld send
  // --group`), at most kMaxGroups, each valid_group(). Not sent in version 3.
  std::vector<std::string> groups;
  Proof proof{};
};

// A group name: 1-64 characters of [A-Za-z0-9._-], not starting with '-'.
bool valid_group(std::string_view name) noexcept;

struct HelloAck {
  std::uint64_t session_id = 0;
  std::uint64_t rx_dsn = 0;       // last DATA dsn the gateway received in this session (0: none)
  bool resumed = false;           // false: a new session; the CPE drops what it kept for the old one
  std::uint32_t heartbeat_ms = 0; // the gateway's heartbeat interval, for the CPE's information
  std::string gateway_id;         // version 4: the gateway's --id (1..64 printable ASCII)
  Proof proof{};
};

// Encoders append the frame body (no frame header) to `out` in the layout of
// protocol `version` (3 or 4). The proof is the last kProofSize bytes of the
// body; encode with a zero proof, then sign_hello / sign_hello_ack fill it in.
void encode(const Challenge& c, std::vector<std::uint8_t>& out);
void encode(const Hello& h, std::uint8_t version, std::vector<std::uint8_t>& out);
void encode(const HelloAck& a, std::uint8_t version, std::vector<std::uint8_t>& out);

// Decoders: nullopt with `why` set when the body is malformed.
std::optional<Challenge> decode_challenge(std::span<const std::uint8_t> body, std::string& why);
std::optional<Hello> decode_hello(std::span<const std::uint8_t> body, std::uint8_t version, std::string& why);
std::optional<HelloAck> decode_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version,
                                         std::string& why);

// `body` is an encoded HELLO / HELLO_ACK of protocol `version`; its last
// kProofSize bytes are overwritten with the proof. With an empty key the
// proof is all zero.
void sign_hello(std::span<std::uint8_t> body, std::uint8_t version, const Key& key, const Nonce& server_nonce);
void sign_hello_ack(std::span<std::uint8_t> body, std::uint8_t version, const Key& key, const Nonce& client_nonce,
                    const Nonce& server_nonce);
// True when the proof at the end of `body` is right, compared in constant time.
bool verify_hello(std::span<const std::uint8_t> body, std::uint8_t version, const Key& key,
                  const Nonce& server_nonce);
bool verify_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version, const Key& key,
                      const Nonce& client_nonce, const Nonce& server_nonce);

// Fresh random bytes from OpenSSL's CSPRNG; throws if it fails.
Nonce random_nonce();
std::uint64_t random_u64();

// Key files. A key is the file's first line: either 64 hex digits (32 bytes)
// or at least 16 bytes of text, used as is.
//   CPE:     one line, the key.
//   gateway: lines "ID KEY" (that CPE's key), or a line with only "KEY" (the
//            key for any other ID). Blank lines and lines starting '#' skip.
// Both throw std::runtime_error with the file name and line on bad input, and
// refuse a file that others can read.
Key load_key_file(const std::string& path);
struct KeyTable {
  std::map<std::string, Key, std::less<>> by_id;
  std::optional<Key> any;
  // nullptr: unknown id.
  const Key* find(std::string_view id) const;
};
KeyTable load_key_table(const std::string& path);
Key parse_key(std::string_view text);  // throws std::invalid_argument

// Why a gateway refused a HELLO; sent as the ERROR frame's reason.
inline constexpr std::string_view kErrBadProof = "bad proof";
inline constexpr std::string_view kErrVersion = "unsupported version";
inline constexpr std::string_view kErrUnknownId = "unknown id";
inline constexpr std::string_view kErrFull = "gateway full";
inline constexpr std::string_view kErrMalformed = "malformed hello";
inline constexpr std::string_view kErrPrefixInUse = "prefix in use by another CPE";

}  // namespace tunnel::hs
