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
// client proof = HMAC-SHA256(key, "tunneld/3 hello" | server nonce | HELLO body before the proof)
// server proof = HMAC-SHA256(key, "tunneld/3 hello-ack" | client nonce | server nonce |
//                                 HELLO_ACK body before the proof)
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

using Nonce = std::array<std::uint8_t, kNonceSize>;
using Proof = std::array<std::uint8_t, kProofSize>;

// Capability bits a HELLO may carry. None is required by version 3.
inline constexpr std::uint32_t kCapUdpGso = 1u << 0;

struct Challenge {
  Nonce nonce{};
};

struct Hello {
  std::uint32_t capabilities = 0;
  Nonce nonce{};
  std::uint64_t resume_session = 0;  // 0: a new session
  std::uint64_t resume_rx_dsn = 0;   // last DATA dsn the CPE received in that session
  std::string id;                    // 1..64 bytes, printable ASCII
  std::vector<Prefix> prefixes;      // inner prefixes the CPE serves (sources it may use)
  Proof proof{};
};

struct HelloAck {
  std::uint64_t session_id = 0;
  std::uint64_t rx_dsn = 0;       // last DATA dsn the gateway received in this session (0: none)
  bool resumed = false;           // false: a new session; the CPE drops what it kept for the old one
  std::uint32_t heartbeat_ms = 0; // the gateway's heartbeat interval, for the CPE's information
  Proof proof{};
};

// Encoders append the frame body (no frame header) to `out`. The proof is
// the last kProofSize bytes of the body; encode with a zero proof, then
// sign_hello / sign_hello_ack fill it in.
void encode(const Challenge& c, std::vector<std::uint8_t>& out);
void encode(const Hello& h, std::vector<std::uint8_t>& out);
void encode(const HelloAck& a, std::vector<std::uint8_t>& out);

// Decoders: nullopt with `why` set when the body is malformed.
std::optional<Challenge> decode_challenge(std::span<const std::uint8_t> body, std::string& why);
std::optional<Hello> decode_hello(std::span<const std::uint8_t> body, std::string& why);
std::optional<HelloAck> decode_hello_ack(std::span<const std::uint8_t> body, std::string& why);

// True when `id` is 1..kMaxIdLength printable ASCII characters without
// spaces: the ids a HELLO and the gateway's key file may carry.
bool valid_id(std::string_view id) noexcept;

// `body` is an encoded HELLO / HELLO_ACK; its last kProofSize bytes are
// overwritten with the proof. With an empty key (authentication disabled) the
// proof is all zero. A hs::Key (keys::SecretKey) converts to KeyView.
void sign_hello(std::span<std::uint8_t> body, KeyView key, const Nonce& server_nonce);
void sign_hello_ack(std::span<std::uint8_t> body, KeyView key, const Nonce& client_nonce,
                    const Nonce& server_nonce);
// True when the proof at the end of `body` is right, compared in constant
// time. Always false with an empty key.
bool verify_hello(std::span<const std::uint8_t> body, KeyView key, const Nonce& server_nonce);
bool verify_hello_ack(std::span<const std::uint8_t> body, KeyView key, const Nonce& client_nonce,
                      const Nonce& server_nonce);

// Fresh random bytes from OpenSSL's CSPRNG; throws if it fails.
Nonce random_nonce();
std::uint64_t random_u64();

// Why a gateway refused a HELLO; sent as the ERROR frame's reason.
inline constexpr std::string_view kErrBadProof = "bad proof";
inline constexpr std::string_view kErrVersion = "unsupported version";
inline constexpr std::string_view kErrUnknownId = "unknown id";
inline constexpr std::string_view kErrFull = "gateway full";
inline constexpr std::string_view kErrMalformed = "malformed hello";
inline constexpr std::string_view kErrPrefixInUse = "prefix in use by another CPE";
// The one answer for an unknown id and for a wrong proof, so that ids cannot
// be enumerated (verify against KeyTable::key_or_decoy). kErrBadProof and
// kErrUnknownId remain only for peers that print them.
inline constexpr std::string_view kErrAuthFailed = "authentication failed";
inline constexpr std::string_view kErrPrefixNotAllowed = keys::kErrPrefixNotAllowed;

}  // namespace tunnel::hs
