// The view of pre-shared key bytes that the MAC, KDF and AEAD functions take
// (handshake.hpp, seal.hpp). The bytes are owned elsewhere (keys::SecretKey,
// keys.hpp) and must outlive the call they are passed to. No dependencies, so
// the protocol core can take a key without the key files' parsing.
#pragma once

#include <cstdint>
#include <span>

namespace tunnel::keys {

// Read-only view of key bytes. Empty: no key.
using KeyView = std::span<const std::uint8_t>;

}  // namespace tunnel::keys
