// The send queue's admission rule while connected, pure so that tests can
// drive it with a replay buffer alone.
//
// - At most `limit` unsent bytes: beyond it, while data moves, the tunnel
//   cannot keep up, and a new packet is dropped (the caller counts it) to
//   bound the added latency.
// - Beyond it while the connection is stalled (the caller's rule: the socket
//   took nothing, or the peer acknowledged nothing, for a while), packets are
//   kept, as during an outage.
// - Bytes a resume queued (the replay) or a stall kept do not count against
//   the limit until they are sent: packets arriving behind them get the whole
//   limit, so the end of a short outage loses nothing. The exemption ends
//   with the bytes it covers, whatever arrives later, so a tunnel that stays
//   overloaded is held to the limit again.
#pragma once

#include <tunnel/replay_buffer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace tunnel {

class SendQueue {
 public:
  enum class Admit { take, keep, drop };  // keep: taken in a stall; call exempt_all() once queued

  explicit SendQueue(std::size_t limit) : limit_(limit) {}

  // For a new packet, given what `tx` holds. `stalled()` is asked only when
  // the queue is over its limit (it may read the clock).
  template <class Stalled>
  Admit admit(const ReplayBuffer& tx, Stalled&& stalled) const {
    if (tx.unsent_bytes() <= limit_) return Admit::take;
    if (stalled()) return Admit::keep;
    return tx.unsent_bytes() > limit_ + exempt(tx) ? Admit::drop : Admit::take;
  }

  // Everything `tx` holds so far is exempt: after a packet admitted with
  // Admit::keep was queued, and after a resume queued the replay.
  void exempt_all(const ReplayBuffer& tx) { exempt_end_ = std::max(exempt_end_, tx.end_pos()); }

  // Unsent bytes that do not count against the limit.
  std::size_t exempt(const ReplayBuffer& tx) const {
    return exempt_end_ > tx.sent_pos() ? static_cast<std::size_t>(exempt_end_ - tx.sent_pos()) : 0;
  }

 private:
  std::size_t limit_;
  std::uint64_t exempt_end_ = 0;  // stream position where the exempt bytes end
};

}  // namespace tunnel
