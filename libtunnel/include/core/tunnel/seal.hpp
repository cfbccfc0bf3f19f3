// Frame protection after the handshake (docs/security.md): per-link,
// per-direction keys and an AEAD over every frame. Pure: no I/O, no logging,
// no allocation per frame.
//
// Keys: HKDF-SHA256 (RFC 5869) with
//   IKM  = the pre-shared key
//   salt = the CPE's HELLO nonce | the gateway's CHALLENGE nonce (this link's)
//   info = "tunneld/<version> <protection> <cipher> <direction>"
// so every link and every resume (fresh nonces) has fresh keys, the two
// directions never share one, and a key is only ever used with one algorithm
// and one protection mode.
//
// A sealed frame on the wire:
//
//   +---------------+------------------------------+---------+
//   | header (8)    | body (n): encrypted, or in   | tag (16)|
//   | length = n+16 | clear with --integrity-only  |         |
//   +---------------+------------------------------+---------+
//
// The header's length field covers the tag. The header (with that length) is
// authenticated as associated data; with Protection::integrity_only the body
// is associated data too and travels in clear. The AEAD nonce is 4 zero bytes
// and a 64-bit big-endian counter of the frames sent in that direction under
// that key, starting at 0; it is never sent. The byte stream delivers frames
// in order, so the receiver's counter is implicit: a frame dropped, repeated
// or reordered fails to open.
#pragma once

#include <tunnel/key_view.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX

namespace tunnel::seal {

inline constexpr std::size_t kHeaderSize = 8;  // wire::kHeaderSize
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kKeySize = 32;
// Frames one key may seal: counters 0 .. kMaxFrames-1. The last 64-bit value
// is never used, so a counter cannot wrap.
inline constexpr std::uint64_t kMaxFrames = std::numeric_limits<std::uint64_t>::max();

using Nonce = std::array<std::uint8_t, 32>;  // hs::Nonce

enum class Cipher : std::uint8_t {
  chacha20_poly1305 = 1,  // fast everywhere, constant time without hardware support
  aes_256_gcm = 2,        // faster where the CPU has AES and carry-less multiply instructions
};
enum class Protection : std::uint8_t {
  encrypt = 1,         // body encrypted and authenticated
  integrity_only = 2,  // body in clear, authenticated (--integrity-only)
};
enum class Direction : std::uint8_t { cpe_to_gateway = 1, gateway_to_cpe = 2 };
enum class Role : std::uint8_t { cpe, gateway };

std::string_view to_string(Cipher c) noexcept;
std::string_view to_string(Protection p) noexcept;
std::string_view to_string(Direction d) noexcept;

// What both ends of a link agreed on in the handshake.
struct Suite {
  std::uint8_t version = 0;  // the protocol version the link speaks
  Cipher cipher = Cipher::chacha20_poly1305;
  Protection protection = Protection::encrypt;
};

// AES-256-GCM when this CPU has AES and carry-less multiply instructions
// (x86: AES-NI and PCLMULQDQ; arm64: AES and PMULL), else ChaCha20-Poly1305.
// A hint for what to offer in the handshake; both ends must use the same.
Cipher preferred_cipher() noexcept;

// One direction's key; wiped when destroyed.
class DirectionKey {
 public:
  DirectionKey() = default;
  DirectionKey(const DirectionKey&) = delete;
  DirectionKey& operator=(const DirectionKey&) = delete;
  ~DirectionKey();
  std::span<const std::uint8_t, kKeySize> bytes() const noexcept { return bytes_; }
  std::span<std::uint8_t, kKeySize> bytes() noexcept { return bytes_; }

 private:
  std::array<std::uint8_t, kKeySize> bytes_{};
};

// Derives the key of direction `d` (see the file comment). Throws
// std::invalid_argument for an empty `psk`, std::runtime_error when OpenSSL
// fails.
void derive_key(keys::KeyView psk, const Nonce& cpe_nonce, const Nonce& gateway_nonce, Direction d,
                const Suite& suite, DirectionKey& out);

// What seal and open report. Every value but `ok` is final for the link: the
// connection must be closed (and the session resumed on a new link).
enum class Status : std::uint8_t {
  ok,
  bad_length,    // the frame is shorter than header + tag, longer than the
                 // AEAD accepts, or its length field disagrees with its size
  exhausted,     // kMaxFrames (or the configured limit) frames were sealed or
                 // opened under this key; a new link (new keys) is needed
  forged,        // open: the tag does not match (tampered, wrong key, or out of order)
  crypto_error,  // OpenSSL failed
};
std::string_view to_string(Status s) noexcept;

// Total bytes of the sealed frame whose header is at `header` (at least
// kHeaderSize bytes), for a receiver that reads the stream: kHeaderSize +
// the length field. nullopt when the length is below kTagSize or above
// `max_body` + kTagSize; the connection is then corrupt.
std::optional<std::size_t> sealed_frame_size(std::span<const std::uint8_t> header, std::size_t max_body) noexcept;

// Seals the frames of one direction of one link. Holds one cipher context,
// set up once; sealing allocates nothing. Move-only.
class Sealer {
 public:
  // Throws std::runtime_error when OpenSSL cannot set up the cipher.
  // `max_frames` lowers the rekey bound below kMaxFrames.
  Sealer(const DirectionKey& key, const Suite& suite, std::uint64_t max_frames = kMaxFrames);
  Sealer(Sealer&&) noexcept;
  Sealer& operator=(Sealer&&) noexcept;
  ~Sealer();

  // `frame` holds a plain frame (header whose length field is n, body of n
  // bytes, as the wire encoders write it) followed by kTagSize bytes of room:
  // frame.size() == kHeaderSize + n + kTagSize. On ok the length field reads
  // n + kTagSize, the body is encrypted in place (unless integrity_only) and
  // the tag fills the room. Any other status leaves the counter unchanged.
  Status seal(std::span<std::uint8_t> frame) noexcept;
  std::uint64_t frames() const noexcept { return counter_; }  // sealed so far

 private:
  std::unique_ptr<evp_cipher_ctx_st, void (*)(evp_cipher_ctx_st*)> ctx_;
  Protection protection_;
  std::uint64_t counter_ = 0;
  std::uint64_t max_frames_;
};

// Opens the frames of the other direction, in the order they were sealed.
class Opener {
 public:
  Opener(const DirectionKey& key, const Suite& suite, std::uint64_t max_frames = kMaxFrames);
  Opener(Opener&&) noexcept;
  Opener& operator=(Opener&&) noexcept;
  ~Opener();

  // `frame` is one whole sealed frame as received (kHeaderSize + the length
  // field bytes; see sealed_frame_size). On ok the length field reads n (the
  // tag no longer counted) and the body is plain, so frame.first(kHeaderSize
  // + n) is a frame for wire::parse_frame. On `forged` the body is zeroed.
  // The tag is compared in constant time.
  Status open(std::span<std::uint8_t> frame) noexcept;
  std::uint64_t frames() const noexcept { return counter_; }  // opened so far

 private:
  std::unique_ptr<evp_cipher_ctx_st, void (*)(evp_cipher_ctx_st*)> ctx_;
  Protection protection_;
  std::uint64_t counter_ = 0;
  std::uint64_t max_frames_;
};

// Both directions of one link for the end playing `self`: its Sealer uses
// the key of the direction it sends in, its Opener the other.
struct LinkCrypto {
  Sealer sealer;
  Opener opener;
};
LinkCrypto make_link_crypto(keys::KeyView psk, const Nonce& cpe_nonce, const Nonce& gateway_nonce, Role self,
                            const Suite& suite);

}  // namespace tunnel::seal
