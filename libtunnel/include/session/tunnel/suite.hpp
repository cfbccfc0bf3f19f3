// Negotiation of a connection's frame protection in the handshake
// (handshake_codec.hpp: the cipher and protection bytes of a version 4 HELLO
// and HELLO_ACK; seal.hpp: what they select). Pure.
//
// The CPE offers its preferred cipher and the protection it wants
// (encrypt, or integrity_only with --integrity-only; none only without a
// key). The gateway takes the offered cipher, and integrity_only when either
// end asks for it, else encrypt. Without keys on the gateway there is
// nothing to derive from: none. A version 3 connection is never protected;
// an end configured with `require` refuses an unprotected connection
// (protection_required).
#pragma once

#include <tunnel/fault.hpp>
#include <tunnel/seal.hpp>

#include <cstdint>
#include <optional>

namespace tunnel {

struct ProtectionPolicy {
  bool integrity_only = false;  // ask for (CPE) or impose (gateway) integrity_only
  bool require = false;         // refuse unprotected connections (version 3, or no key)
};

struct SuiteBytes {
  std::uint8_t cipher = 0, protection = 0;  // 0: hs::kProtectNone
};

// CPE: what to offer in a HELLO; `keyed` says whether it has a key.
SuiteBytes offer_suite(bool keyed, const ProtectionPolicy& p);

// Gateway: its answer to a HELLO of `version` carrying `offer`, or the fault
// to refuse it with (protection_required, malformed_hello).
struct SuiteChoice {
  Fault fault = Fault::none;
  SuiteBytes bytes;
};
SuiteChoice answer_suite(std::uint8_t version, SuiteBytes offer, bool keyed, const ProtectionPolicy& p);

// CPE: checks the gateway's answer against the offer; Fault::none when the
// connection may go on with it.
Fault check_suite(std::uint8_t version, SuiteBytes offered, SuiteBytes answered, bool keyed,
                  const ProtectionPolicy& p);

// The seal suite for agreed bytes, or nullopt for an unprotected connection.
std::optional<seal::Suite> to_suite(std::uint8_t version, SuiteBytes agreed);

}  // namespace tunnel
