// Why a handshake or a connection of a session ended: one closed set for the
// whole library. Callers switch on it; text appears only at the edge
// (logs, status, and an ERROR frame's reason via wire_reason()).
#pragma once

#include <cstdint>
#include <string_view>

namespace tunnel {

enum class Fault : std::uint8_t {
  none,
  // The handshake (either side).
  handshake_timeout,      // no complete handshake within the deadline
  closed_in_handshake,    // the peer closed the connection during it
  socket_error,           // a socket call failed (the errno is logged beside)
  malformed_frame,        // bytes that are not a frame of a version we speak
  unexpected_frame,       // a valid frame of the wrong type for the moment
  unsupported_version,    // no protocol version both sides speak
  malformed_hello,        // HELLO, HELLO_ACK or CHALLENGE body does not decode
  auth_failed,            // unknown id or wrong proof: one answer for both
  gateway_full,           // --max-cpes sessions exist
  prefix_in_use,          // another CPE holds an overlapping prefix
  prefix_not_allowed,     // a claimed prefix is outside the id's binding in the key file
  group_not_allowed,      // an announced group is outside the id's groups= in the key file
  unknown_session,        // a join (link > 0) names a session the gateway does not hold for that id
  refused,                // CPE side: the gateway answered ERROR (its reason is logged)
  // An established connection.
  peer_closed,            // the peer sent CLOSE: the session ends
  peer_error,             // the peer sent ERROR
  peer_disconnected,      // the stream ended (EOF or reset)
  dead_silent,            // nothing arrived for the dead interval
  dead_unacked,           // sent data waited the dead interval for an ACK
  no_subflow,             // MPTCP reports no established subflow left
  forged_frame,           // a protected frame failed to open: altered, injected, dropped or reordered
  seal_failed,            // a frame could not be sealed (keys exhausted, OpenSSL failed)
  protection_required,    // handshake: the peer offers no frame protection and this end requires it
  malformed_control,      // a control frame (MESSAGE, RESULT, RECEIPT) whose body does not decode,
                          // out of sequence, or a RECEIPT for an item never sent
};

std::string_view to_string(Fault f) noexcept;

// The reason an ERROR frame carries for a refusal, or empty when the peer is
// told nothing (timeouts, socket errors). auth_failed is the same text for an
// unknown id and a wrong proof, so ids cannot be enumerated.
std::string_view wire_reason(Fault f) noexcept;

// What a layer above the link core made of a frame it was handed: `fault`
// none when it took the frame; otherwise the connection ends with `fault`,
// and `detail` (static text, e.g. "receipt_ahead") goes into the one log
// line that reports it.
struct FrameVerdict {
  Fault fault = Fault::none;
  std::string_view detail;
};

}  // namespace tunnel
