#include <tunnel/seal.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tunnel::seal {
namespace {

constexpr std::size_t kIvSize = 12;

void free_ctx(evp_cipher_ctx_st* c) { EVP_CIPHER_CTX_free(c); }

// The algorithms, fetched once from the default provider.
const EVP_CIPHER* algorithm(Cipher c) {
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  static EVP_CIPHER* const gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return c == Cipher::aes_256_gcm ? gcm : chacha;
}

evp_cipher_ctx_st* new_ctx(const DirectionKey& key, const Suite& suite, int enc) {
  if (suite.cipher != Cipher::chacha20_poly1305 && suite.cipher != Cipher::aes_256_gcm)
    throw std::invalid_argument("unknown cipher");
  if (suite.protection != Protection::encrypt && suite.protection != Protection::integrity_only)
    throw std::invalid_argument("unknown protection mode");
  const EVP_CIPHER* alg = algorithm(suite.cipher);
  EVP_CIPHER_CTX* ctx = alg ? EVP_CIPHER_CTX_new() : nullptr;
  if (!ctx || EVP_CipherInit_ex2(ctx, alg, key.bytes().data(), nullptr, enc, nullptr) != 1 ||
      EVP_CIPHER_CTX_get_iv_length(ctx) != static_cast<int>(kIvSize) ||
      EVP_CIPHER_CTX_get_key_length(ctx) != static_cast<int>(kKeySize)) {
    EVP_CIPHER_CTX_free(ctx);
    throw std::runtime_error(std::string("OpenSSL cannot set up ") + std::string(to_string(suite.cipher)));
  }
  return ctx;
}

void make_iv(std::uint64_t counter, std::uint8_t (&iv)[kIvSize]) {
  std::memset(iv, 0, 4);
  for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
}

std::uint32_t get_length(const std::uint8_t* h) {
  return (std::uint32_t{h[4]} << 24) | (std::uint32_t{h[5]} << 16) | (std::uint32_t{h[6]} << 8) | h[7];
}
void set_length(std::uint8_t* h, std::uint32_t v) {
  h[4] = static_cast<std::uint8_t>(v >> 24);
  h[5] = static_cast<std::uint8_t>(v >> 16);
  h[6] = static_cast<std::uint8_t>(v >> 8);
  h[7] = static_cast<std::uint8_t>(v);
}

// Body sizes the AEAD calls take (an int); a frame body is far smaller.
constexpr std::size_t kMaxFrameSize = INT_MAX / 2;

}  // namespace

std::string_view to_string(Cipher c) noexcept {
  switch (c) {
    case Cipher::chacha20_poly1305: return "chacha20-poly1305";
    case Cipher::aes_256_gcm: return "aes-256-gcm";
  }
  return "unknown";
}

std::string_view to_string(Protection p) noexcept {
  switch (p) {
    case Protection::encrypt: return "encrypt";
    case Protection::integrity_only: return "integrity-only";
  }
  return "unknown";
}

std::string_view to_string(Direction d) noexcept {
  switch (d) {
    case Direction::cpe_to_gateway: return "cpe-to-gateway";
    case Direction::gateway_to_cpe: return "gateway-to-cpe";
  }
  return "unknown";
}

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::bad_length: return "sealed frame has a bad length";
    case Status::exhausted: return "frame counter exhausted; the link needs new keys";
    case Status::forged: return "frame failed authentication";
    case Status::crypto_error: return "OpenSSL failed";
  }
  return "unknown";
}

Cipher preferred_cipher() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_AES) && (c & bit_PCLMUL)) return Cipher::aes_256_gcm;
#elif defined(__aarch64__)
  const unsigned long hw = getauxval(AT_HWCAP);
  if ((hw & HWCAP_AES) && (hw & HWCAP_PMULL)) return Cipher::aes_256_gcm;
#endif
  return Cipher::chacha20_poly1305;
}

DirectionKey::~DirectionKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

void derive_key(keys::KeyView psk, const Nonce& cpe_nonce, const Nonce& gateway_nonce, Direction d,
                const Suite& suite, DirectionKey& out) {
  if (psk.empty()) throw std::invalid_argument("frame keys need a pre-shared key");
  std::uint8_t salt[2 * sizeof(Nonce)];
  std::memcpy(salt, cpe_nonce.data(), cpe_nonce.size());
  std::memcpy(salt + cpe_nonce.size(), gateway_nonce.data(), gateway_nonce.size());
  std::string info = "tunneld/" + std::to_string(suite.version) + " " + std::string(to_string(suite.protection)) +
                     " " + std::string(to_string(suite.cipher)) + " " + std::string(to_string(d));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(psk.data()), psk.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  const bool ok = ctx && EVP_KDF_derive(ctx, out.bytes().data(), kKeySize, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) throw std::runtime_error("HKDF-SHA256 failed in OpenSSL");
}

std::optional<std::size_t> sealed_frame_size(std::span<const std::uint8_t> header, std::size_t max_body) noexcept {
  if (header.size() < kHeaderSize) return std::nullopt;
  const std::size_t len = get_length(header.data());
  if (len < kTagSize || len > max_body + kTagSize) return std::nullopt;
  return kHeaderSize + len;
}

// ---------------------------------------------------------------- Sealer

Sealer::Sealer(const DirectionKey& key, const Suite& suite, std::uint64_t max_frames)
    : ctx_(new_ctx(key, suite, 1), free_ctx), protection_(suite.protection), max_frames_(max_frames) {}
Sealer::Sealer(Sealer&&) noexcept = default;
Sealer& Sealer::operator=(Sealer&&) noexcept = default;
Sealer::~Sealer() = default;

Status Sealer::seal(std::span<std::uint8_t> frame) noexcept {
  if (frame.size() < kHeaderSize + kTagSize || frame.size() > kMaxFrameSize) return Status::bad_length;
  std::uint8_t* const hdr = frame.data();
  const std::size_t n = frame.size() - kHeaderSize - kTagSize;
  if (get_length(hdr) != n) return Status::bad_length;
  if (counter_ >= max_frames_ || counter_ == kMaxFrames) return Status::exhausted;
  std::uint8_t* const body = hdr + kHeaderSize;
  std::uint8_t iv[kIvSize];
  make_iv(counter_, iv);
  set_length(hdr, static_cast<std::uint32_t>(n + kTagSize));
  EVP_CIPHER_CTX* c = ctx_.get();
  int len = 0;
  bool ok = EVP_CipherInit_ex2(c, nullptr, nullptr, iv, 1, nullptr) == 1 &&
            EVP_EncryptUpdate(c, nullptr, &len, hdr, kHeaderSize) == 1;
  if (ok && n > 0) {
    if (protection_ == Protection::integrity_only)
      ok = EVP_EncryptUpdate(c, nullptr, &len, body, static_cast<int>(n)) == 1;
    else
      ok = EVP_EncryptUpdate(c, body, &len, body, static_cast<int>(n)) == 1 && len == static_cast<int>(n);
  }
  ok = ok && EVP_EncryptFinal_ex(c, body + n, &len) == 1 && len == 0 &&
       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagSize, body + n) == 1;
  if (!ok) return Status::crypto_error;
  ++counter_;
  return Status::ok;
}

// ---------------------------------------------------------------- Opener

Opener::Opener(const DirectionKey& key, const Suite& suite, std::uint64_t max_frames)
    : ctx_(new_ctx(key, suite, 0), free_ctx), protection_(suite.protection), max_frames_(max_frames) {}
Opener::Opener(Opener&&) noexcept = default;
Opener& Opener::operator=(Opener&&) noexcept = default;
Opener::~Opener() = default;

Status Opener::open(std::span<std::uint8_t> frame) noexcept {
  if (frame.size() < kHeaderSize + kTagSize || frame.size() > kMaxFrameSize) return Status::bad_length;
  std::uint8_t* const hdr = frame.data();
  const std::size_t n = frame.size() - kHeaderSize - kTagSize;
  if (get_length(hdr) != n + kTagSize) return Status::bad_length;
  if (counter_ >= max_frames_ || counter_ == kMaxFrames) return Status::exhausted;
  std::uint8_t* const body = hdr + kHeaderSize;
  std::uint8_t iv[kIvSize];
  make_iv(counter_, iv);
  std::uint8_t tag[kTagSize];
  std::memcpy(tag, body + n, kTagSize);
  EVP_CIPHER_CTX* c = ctx_.get();
  int len = 0;
  bool ok = EVP_CipherInit_ex2(c, nullptr, nullptr, iv, 0, nullptr) == 1 &&
            EVP_DecryptUpdate(c, nullptr, &len, hdr, kHeaderSize) == 1;
  if (ok && n > 0) {
    if (protection_ == Protection::integrity_only)
      ok = EVP_DecryptUpdate(c, nullptr, &len, body, static_cast<int>(n)) == 1;
    else
      ok = EVP_DecryptUpdate(c, body, &len, body, static_cast<int>(n)) == 1 && len == static_cast<int>(n);
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) == 1;
  if (!ok) return Status::crypto_error;
  // The tag check (CRYPTO_memcmp inside OpenSSL) is constant time.
  if (EVP_DecryptFinal_ex(c, body + n, &len) != 1) {
    OPENSSL_cleanse(body, n);  // never hand out unauthenticated plaintext
    return Status::forged;
  }
  set_length(hdr, static_cast<std::uint32_t>(n));
  ++counter_;
  return Status::ok;
}

LinkCrypto make_link_crypto(keys::KeyView psk, const Nonce& cpe_nonce, const Nonce& gateway_nonce, Role self,
                            const Suite& suite) {
  DirectionKey up, down;
  derive_key(psk, cpe_nonce, gateway_nonce, Direction::cpe_to_gateway, suite, up);
  derive_key(psk, cpe_nonce, gateway_nonce, Direction::gateway_to_cpe, suite, down);
  if (self == Role::cpe) return {Sealer(up, suite), Opener(down, suite)};
  return {Sealer(down, suite), Opener(up, suite)};
}

}  // namespace tunnel::seal
