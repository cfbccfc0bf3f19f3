// Session handshake proofs (docs/protocol.md, "Handshake"); the messages
// they sign are handshake_codec.hpp's. Pure: no sockets. Keys and key files:
// keys.hpp.
//
// client proof = HMAC-SHA256(key, "tunneld/V hello" | server nonce | HELLO body before the proof)
// server proof = HMAC-SHA256(key, "tunneld/V hello-ack" | client nonce | server nonce |
//                                 HELLO_ACK body before the proof)
// V is the connection's protocol version.
// Each proof covers the other side's fresh nonce, so a recorded exchange is
// useless on a new connection, and every field it is sent with, so none can
// be changed in flight. Proofs are compared in constant time.
#pragma once

#include <tunnel/handshake_codec.hpp>
#include <tunnel/keys.hpp>

#include <cstdint>
#include <span>

namespace tunnel::hs {

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

// The ERROR reasons a gateway sends are wire_reason(Fault) (fault.hpp): an
// unknown id and a wrong proof get the same one, Fault::auth_failed, so that
// ids cannot be enumerated (the proof is checked against
// KeyTable::key_or_decoy).

}  // namespace tunnel::hs
