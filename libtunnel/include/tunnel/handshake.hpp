// Session handshake (docs/protocol.md, "Handshake"): message bodies and
// proofs. Pure: bytes in, values out; no sockets. The encoders and decoders
// (handshake_codec.cpp) need no OpenSSL; the proofs and random values
// (handshake.cpp) do. Keys and key files: keys.hpp.
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
#include <tunnel/keys.hpp>

#include <array>
#include <cstdint>
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

using Nonce = std::array<std::uint8_t, kNonceSize>;
using Proof = std::array<std::uint8_t, kProofSize>;

// Capability bits a HELLO may carry. None is required by version 3.
inline constexpr std::uint32_t kCapUdpGso = 1u << 0;
// The CPE speaks a newer version than this HELLO's: it chose this one
// because the CHALLENGE offered no newer. The proof covers it, so a gateway
// that did offer newer knows the CHALLENGE was altered (a downgrade) and
// refuses.
inline constexpr std::uint32_t kCapNewerVersion = 1u << 1;

struct Challenge {
  Nonce nonce{};
  // Versions the gateway speaks; 0 when it did not say (a version 3 gateway).
  std::uint8_t min_version = 0, max_version = 0;
};

// The version a CPE speaking [wire::kMinVersion, `ours`] picks for this
// challenge, or 0 when there is none.
std::uint8_t choose_version(const Challenge& c, std::uint8_t ours);

// Frame protection in a version 4 handshake (seal.hpp): HELLO carries the
// CPE's wish, HELLO_ACK the gateway's choice, each a cipher byte
// (seal::Cipher) and a protection byte (seal::Protection; kProtectNone when
// there is no key to derive from). Both proofs cover them, so neither can be
// changed in flight. Version 3 connections are never protected.
inline constexpr std::uint8_t kProtectNone = 0;

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
  std::uint8_t cipher = 0, protection = kProtectNone;  // version 4: see kProtectNone
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
  std::uint8_t cipher = 0, protection = kProtectNone;  // version 4: the suite chosen (kProtectNone)
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

// True when `id` is 1..kMaxIdLength printable ASCII characters without
// spaces: the ids a HELLO and the gateway's key file may carry.
bool valid_id(std::string_view id) noexcept;

// `body` is an encoded HELLO / HELLO_ACK of protocol `version`; its last
// kProofSize bytes are overwritten with the proof. With an empty key
// (authentication disabled) the proof is all zero. A hs::Key
// (keys::SecretKey) converts to KeyView.
void sign_hello(std::span<std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& server_nonce);
void sign_hello_ack(std::span<std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& client_nonce,
                    const Nonce& server_nonce);
// True when the proof at the end of `body` is right, compared in constant
// time. Always false with an empty key.
bool verify_hello(std::span<const std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& server_nonce);
bool verify_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version, KeyView key,
                      const Nonce& client_nonce, const Nonce& server_nonce);

// Fresh random bytes from OpenSSL's CSPRNG; throws if it fails.
Nonce random_nonce();
std::uint64_t random_u64();

// The ERROR reasons a gateway sends are wire_reason(Fault) (fault.hpp). The
// one answer for an unknown id and for a wrong proof, so that ids cannot be
// enumerated (the proof is checked against KeyTable::key_or_decoy):
inline constexpr std::string_view kErrAuthFailed = "authentication failed";
inline constexpr std::string_view kErrPrefixNotAllowed = keys::kErrPrefixNotAllowed;
inline constexpr std::string_view kErrGroupNotAllowed = keys::kErrGroupNotAllowed;

}  // namespace tunnel::hs
