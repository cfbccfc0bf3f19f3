// See suite.hpp.
#include <tunnel/handshake_codec.hpp>
#include <tunnel/suite.hpp>

namespace tunnel {

namespace {
constexpr std::uint8_t kEncrypt = static_cast<std::uint8_t>(seal::Protection::encrypt);
constexpr std::uint8_t kIntegrity = static_cast<std::uint8_t>(seal::Protection::integrity_only);
bool known_cipher(std::uint8_t c) {
  return c == static_cast<std::uint8_t>(seal::Cipher::chacha20_poly1305) ||
         c == static_cast<std::uint8_t>(seal::Cipher::aes_256_gcm);
}
}  // namespace

SuiteBytes offer_suite(bool keyed, const ProtectionPolicy& p) {
  if (!keyed) return {};
  return {static_cast<std::uint8_t>(seal::preferred_cipher()), p.integrity_only ? kIntegrity : kEncrypt};
}

SuiteChoice answer_suite(std::uint8_t version, SuiteBytes offer, bool keyed, const ProtectionPolicy& p) {
  SuiteChoice c;
  if (version >= 4 && offer.protection > kIntegrity) {
    c.fault = Fault::malformed_hello;
    return c;
  }
  if (version < 4 || !keyed || offer.protection == hs::kProtectNone) {
    if (p.require) c.fault = Fault::protection_required;
    return c;
  }
  c.bytes.cipher = known_cipher(offer.cipher) ? offer.cipher
                                              : static_cast<std::uint8_t>(seal::Cipher::chacha20_poly1305);
  c.bytes.protection = (p.integrity_only || offer.protection == kIntegrity) ? kIntegrity : kEncrypt;
  return c;
}

Fault check_suite(std::uint8_t version, SuiteBytes offered, SuiteBytes answered, bool keyed,
                  const ProtectionPolicy& p) {
  if (version < 4 || !keyed) return p.require ? Fault::protection_required : Fault::none;
  if (answered.protection == hs::kProtectNone) return Fault::protection_required;  // we have a key: so has it
  if (answered.protection > kIntegrity || answered.cipher != offered.cipher) return Fault::malformed_hello;
  if (offered.protection == kIntegrity && answered.protection != kIntegrity) return Fault::malformed_hello;
  return Fault::none;
}

std::optional<seal::Suite> to_suite(std::uint8_t version, SuiteBytes agreed) {
  if (version < 4 || agreed.protection == hs::kProtectNone) return std::nullopt;
  return seal::Suite{version, static_cast<seal::Cipher>(agreed.cipher),
                     static_cast<seal::Protection>(agreed.protection)};
}

}  // namespace tunnel
