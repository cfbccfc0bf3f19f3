// The handshake's proofs and random values (handshake.hpp); the message
// codec is in handshake_codec.cpp.
#include <tunnel/handshake.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace tunnel::hs {
namespace {

std::string hello_label(std::uint8_t version) { return "tunneld/" + std::to_string(version) + " hello"; }
std::string hello_ack_label(std::uint8_t version) { return "tunneld/" + std::to_string(version) + " hello-ack"; }

Proof hmac(KeyView key, std::initializer_list<std::span<const std::uint8_t>> parts) {
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

}  // namespace

void sign_hello(std::span<std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& server_nonce) {
  if (body.size() < kProofSize) throw std::invalid_argument("hello body shorter than a proof");
  const auto signed_part = body.first(body.size() - kProofSize);
  const Proof p = hmac(key, {label(hello_label(version)), server_nonce, signed_part});
  std::memcpy(body.data() + signed_part.size(), p.data(), kProofSize);
}

void sign_hello_ack(std::span<std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& client_nonce,
                    const Nonce& server_nonce) {
  if (body.size() < kProofSize) throw std::invalid_argument("hello-ack body shorter than a proof");
  const auto signed_part = body.first(body.size() - kProofSize);
  const Proof p = hmac(key, {label(hello_ack_label(version)), client_nonce, server_nonce, signed_part});
  std::memcpy(body.data() + signed_part.size(), p.data(), kProofSize);
}

bool verify_hello(std::span<const std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& server_nonce) {
  if (body.size() < kProofSize || key.empty()) return false;
  return proof_matches(body, hmac(key, {label(hello_label(version)), server_nonce, body.first(body.size() - kProofSize)}));
}

bool verify_hello_ack(std::span<const std::uint8_t> body, std::uint8_t version, KeyView key, const Nonce& client_nonce,
                      const Nonce& server_nonce) {
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

}  // namespace tunnel::hs
