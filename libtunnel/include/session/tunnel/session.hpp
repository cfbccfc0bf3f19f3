// A tunnel session: the identity both ends agreed on in the handshake (the
// session ID the gateway assigned, the CPE's id and prefixes) and its links
// (link.hpp), each an independent lossless stream with its own sequence
// numbers, ACKs and replay buffer, carried by at most one connection at a
// time. Link 0 opens the session and carries bulk data; further links join
// it with their own handshake naming the session (docs/protocol.md).
//
// The session outlives its connections: it expires when every link has been
// without a connection for the hold time (LinkConfig::hold).
//
// Ownership: the owner (the gateway's registry or the CPE) holds the Session;
// the Session holds its Links through shared_ptrs that their pending
// handlers share, and orphans them on destruction (link.hpp, "Lifetime").
#pragma once

#include <tunnel/address.hpp>
#include <tunnel/first_copy.hpp>
#include <tunnel/raw_prefix.hpp>
#include <tunnel/fault.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/link.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel {

// What a session reports to its owner. Called from posted handlers, never
// from inside a Session or Link method.
class SessionEvents {
 public:
  // Link `link`'s connection ended (Fault::peer_closed: the peer ended the
  // session). The link keeps its stream for resume.
  virtual void link_failed(Session& s, Link& link, Fault why, std::string_view detail) = 0;
  // A frame for the layers above the link core (control, probes), called
  // inline while the link parses: `f` is valid during the call only. A
  // verdict other than Fault::none ends the connection with that fault (the
  // session is held for resume): Fault::unexpected_frame for a frame nothing
  // here takes, Fault::malformed_control for a control frame refused (also
  // counted in the link's proto_errors, ParseStatus::bad_control). The one
  // log line is the owner's link_failed(); the verdict's layer logs nothing.
  virtual FrameVerdict frame_received(Session& s, Link& link, const wire::Frame& f) {
    (void)s, (void)link, (void)f;
    return {Fault::unexpected_frame, {}};
  }

 protected:
  ~SessionEvents() = default;
};

class Session {
 public:
  using Clock = LinkCore::Clock;

  // Links 1.. are realtime links (LinkConfig::realtime, realtime_link_config).
  Session(boost::asio::io_context& io, TunPort& tun, const LinkConfig& cfg, std::uint64_t id, SessionEvents& events);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The link with index `i` (< hs::kMaxLinks), created on first use.
  Link& link(unsigned i);
  // nullptr when that link was never used.
  Link* find_link(unsigned i) const { return i < links_.size() ? links_[i].get() : nullptr; }
  std::span<const std::shared_ptr<Link>> links() const { return links_; }

  // Queues a packet on the bulk link; true when it is the first since the
  // last flush() (the owner then owes this session a flush at batch end).
  // `realtime`: a realtime-class packet (control frames do not overtake it:
  // LinkCore::enqueue).
  bool enqueue(std::span<const std::uint8_t> pkt, Clock::time_point now, bool realtime = false) {
    links_[0]->enqueue(pkt, now, realtime);
    const bool first = !flush_pending_;
    flush_pending_ = true;
    return first;
  }
  // A realtime packet: on every connected realtime link (redundant; the
  // receiver keeps the first copy), or on the bulk link when none is
  // connected. Same return as enqueue().
  bool enqueue_realtime(std::span<const std::uint8_t> pkt, Clock::time_point now);
  bool has_realtime_links() const { return links_.size() > 1; }
  // Receiving side: true for the first copy of realtime sequence `rseq`.
  bool first_copy(std::uint64_t rseq) { return first_.accept(rseq) == realtime::FirstCopyFilter::Verdict::deliver; }
  const realtime::FirstCopyFilter& first_copy_filter() const { return first_; }
  void flush();
  // Timers of every link. False when the session expired (no link has had a
  // connection for the hold time).
  bool tick(Clock::time_point now);
  // Sends CLOSE on every connected link without waiting, drops the
  // connections and everything buffered (counted).
  void close();
  // Starts over as a new session `new_id` (the peer did not resume): what
  // was buffered is dropped (counted), sequence state reset.
  void reset(std::uint64_t new_id);
  void assign_id(std::uint64_t id) { id_ = id; }

  // Anti-spoofing: with sources set, a received packet is delivered only
  // when its source lies in one of them.
  void check_sources(std::span<const Prefix> prefixes);
  bool source_ok(std::span<const std::uint8_t> pkt) const {
    return !check_sources_ || source_in(sources_, pkt);
  }

  std::uint64_t id() const { return id_; }
  bool connected() const { return links_[0]->connected(); }
  // Sum over the links.
  LinkCounters counters() const;
  ReplayCounters replay_counters() const;
  std::size_t buffered_packets() const;
  // Heap bytes the session's buffers hold (LinkCore::memory_bytes() summed,
  // with the objects themselves): what the gateway's --memory-limit counts.
  std::size_t memory_bytes() const;

  // Identity, kept by the owner (status and logs).
  std::string peer_id;
  std::vector<Prefix> prefixes;
  std::vector<std::string> groups;  // the CPE's control message groups (HELLO, version 4)

  // Called by a Link: link_failed posted, frame_received inline.
  void link_failed(Link& l, Fault why, std::string_view detail) { events_.link_failed(*this, l, why, detail); }
  FrameVerdict frame_received(Link& l, const wire::Frame& f) { return events_.frame_received(*this, l, f); }

 private:
  boost::asio::io_context& io_;
  TunPort& tun_;
  LinkConfig cfg_;
  std::uint64_t id_;
  SessionEvents& events_;
  std::vector<std::shared_ptr<Link>> links_;
  bool flush_pending_ = false;
  std::uint64_t rseq_ = 0;  // last realtime sequence sent
  realtime::FirstCopyFilter first_;
  bool check_sources_ = false;
  std::vector<RawPrefix> sources_;
};

}  // namespace tunnel
