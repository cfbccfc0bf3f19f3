#include <tunnel/fault.hpp>

namespace tunnel {

std::string_view to_string(Fault f) noexcept {
  switch (f) {
    case Fault::none: return "no error";
    case Fault::handshake_timeout: return "handshake timed out";
    case Fault::closed_in_handshake: return "closed during the handshake";
    case Fault::socket_error: return "socket error";
    case Fault::malformed_frame: return "malformed frame";
    case Fault::unexpected_frame: return "unexpected frame";
    case Fault::unsupported_version: return "unsupported version";
    case Fault::malformed_hello: return "malformed handshake message";
    case Fault::auth_failed: return "authentication failed";
    case Fault::gateway_full: return "gateway full";
    case Fault::prefix_in_use: return "prefix in use by another CPE";
    case Fault::prefix_not_allowed: return "prefix not allowed";
    case Fault::group_not_allowed: return "group not allowed";
    case Fault::unknown_session: return "unknown session";
    case Fault::refused: return "refused by the gateway";
    case Fault::peer_closed: return "peer sent CLOSE";
    case Fault::peer_error: return "peer sent ERROR";
    case Fault::peer_disconnected: return "peer closed the connection";
    case Fault::dead_silent: return "peer silent for the dead interval";
    case Fault::dead_unacked: return "no acknowledgement for the dead interval";
    case Fault::no_subflow: return "no subflow left";
    case Fault::forged_frame: return "frame failed authentication";
    case Fault::seal_failed: return "cannot seal a frame";
    case Fault::protection_required: return "protection required";
    case Fault::malformed_control: return "malformed control frame";
  }
  return "unknown fault";
}

std::string_view wire_reason(Fault f) noexcept {
  switch (f) {
    case Fault::unsupported_version: return "unsupported version";
    case Fault::malformed_frame:
    case Fault::unexpected_frame:
    case Fault::malformed_hello: return "malformed hello";
    case Fault::auth_failed: return "authentication failed";  // an unknown id too: no enumeration
    case Fault::gateway_full: return "gateway full";
    case Fault::prefix_in_use: return "prefix in use by another CPE";
    case Fault::prefix_not_allowed: return "prefix not allowed";
    case Fault::group_not_allowed: return "group not allowed";
    case Fault::unknown_session: return "unknown session";
    case Fault::protection_required: return "protection required";
    default: return {};
  }
}

}  // namespace tunnel
