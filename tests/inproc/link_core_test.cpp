// The per-link protocol core alone (pure: no sockets, a fake clock): two
// cores joined by copying one's output into the other's receive buffer.
#include "harness.hpp"

#include <tunnel/link_core.hpp>
#include <tunnel/seal.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace inproc {
namespace {
using tunnel::LinkCore;
using Kind = LinkCore::RxKind;
using Clock = LinkCore::Clock;

constexpr std::uint8_t kV = tunnel::wire::kVersion;

// Moves everything `from` wants to write into `to`; returns the bytes moved.
std::size_t pipe(LinkCore& from, LinkCore& to, Clock::time_point now, std::size_t max = SIZE_MAX) {
  std::size_t moved = 0;
  for (;;) {
    iovec iov[2];
    const int n = from.output(iov);
    if (n == 0 || moved >= max) break;
    std::size_t took = 0;
    for (int i = 0; i < n; ++i) {
      auto space = to.rx_space();
      const std::size_t k = std::min({iov[i].iov_len, space.size(), max - moved});
      std::memcpy(space.data(), iov[i].iov_base, k);
      to.received(k, now);
      took += k;
      moved += k;
      if (k < iov[i].iov_len) break;
    }
    from.sent(took, now);
    if (took == 0) break;
  }
  return moved;
}

// Every packet the core delivers now; counts the other events.
std::vector<Bytes> drain(LinkCore& c, Clock::time_point now, int* skipped = nullptr, Kind* last = nullptr) {
  std::vector<Bytes> out;
  for (;;) {
    const auto ev = c.next(now);
    if (ev.kind == Kind::packet) out.emplace_back(ev.packet.begin(), ev.packet.end());
    else if (ev.kind == Kind::skipped && skipped) ++*skipped;
    else if (ev.kind != Kind::skipped) {
      if (last) *last = ev.kind;
      if (ev.kind == Kind::none) c.rx_done();
      return out;
    }
  }
}

struct Cores {
  tunnel::LinkConfig cfg;
  Clock::time_point t = Clock::time_point{} + std::chrono::hours(1);
  std::unique_ptr<LinkCore> a, b;
  Cores() {
    cfg.heartbeat = 100ms;
    cfg.dead_interval = 400ms;
    cfg.send_queue_bytes = 16 * 1024;
    cfg.stall_after = 200ms;
    a = std::make_unique<LinkCore>(cfg, t);
    b = std::make_unique<LinkCore>(cfg, t);
    a->attach(0, kV, {}, t);
    b->attach(0, kV, {}, t);
  }
};

TEST(LinkCore, CarriesPacketsInOrder) {
  Cores c;
  std::vector<Bytes> got;
  for (std::uint64_t i = 1; i <= 100; ++i) {
    ASSERT_TRUE(c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 300), c.t));
    if (i % 10 == 0) {
      pipe(*c.a, *c.b, c.t);
      for (auto& p : drain(*c.b, c.t)) got.push_back(std::move(p));
    }
  }
  ASSERT_EQ(got.size(), 100u);
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(got[i], udp4("10.0.0.1", "10.0.0.2", i + 1, 300));
  EXPECT_EQ(c.b->rx_last(), 100u);
}

TEST(LinkCore, ResumeReplaysOnlyWhatThePeerLacksAndDuplicatesAreSkipped) {
  Cores c;
  for (std::uint64_t i = 1; i <= 10; ++i) c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 100), c.t);
  pipe(*c.a, *c.b, c.t);
  EXPECT_EQ(drain(*c.b, c.t).size(), 10u);
  // The connection breaks before b's ACK reaches a; a resumes believing b has only 4.
  c.a->detach(c.t);
  c.b->detach(c.t);
  for (std::uint64_t i = 11; i <= 15; ++i) c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 100), c.t);
  c.a->attach(4, kV, {}, c.t);
  c.b->attach(0, kV, {}, c.t);
  pipe(*c.a, *c.b, c.t);
  int skipped = 0;
  const auto got = drain(*c.b, c.t, &skipped);
  EXPECT_EQ(skipped, 10);  // 1..10 shared one frame, which goes again whole
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(seq_of(got.front()), 11u);
  EXPECT_EQ(c.b->counters().rx_duplicates, 10u);
  EXPECT_GE(c.a->counters().replayed, 11u);
}

TEST(LinkCore, OverTheSendQueueDropsUnlessStalled) {
  Cores c;
  int dropped = 0;
  for (std::uint64_t i = 1; i <= 100; ++i)
    if (!c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 1000), c.t)) ++dropped;
  EXPECT_GT(dropped, 0);  // connected, data moving: overload
  EXPECT_EQ(c.a->counters().drop_queue_full, static_cast<std::uint64_t>(dropped));
  // The socket takes nothing for longer than stall_after: a stall, packets kept.
  c.a->blocked(c.t);
  const auto later = c.t + 300ms;
  for (std::uint64_t i = 101; i <= 150; ++i) EXPECT_TRUE(c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 1000), later));
}

TEST(LinkCore, HeartbeatsAckAndTheDeadInterval) {
  Cores c;
  c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", 1), c.t);
  pipe(*c.a, *c.b, c.t);
  drain(*c.b, c.t);
  EXPECT_EQ(c.b->tick(c.t + 100ms), tunnel::Fault::none);  // queues ACK and a heartbeat
  pipe(*c.b, *c.a, c.t + 100ms);
  drain(*c.a, c.t + 100ms);
  EXPECT_EQ(c.a->buffer().packets(), 0u);  // released by the ACK
  EXPECT_EQ(c.a->counters().heartbeats_received, 1u);
  EXPECT_EQ(c.a->tick(c.t + 450ms), tunnel::Fault::none);
  EXPECT_EQ(c.a->tick(c.t + 600ms), tunnel::Fault::dead_silent);
}

TEST(LinkCore, CloseErrorAndGarbageEndTheStream) {
  Cores c;
  c.a->queue_close();
  pipe(*c.a, *c.b, c.t);
  Kind last = Kind::none;
  drain(*c.b, c.t, nullptr, &last);
  EXPECT_EQ(last, Kind::closed);

  Cores d;
  const Bytes junk(32, 0x99);
  auto sp = d.b->rx_space();
  std::memcpy(sp.data(), junk.data(), junk.size());
  d.b->received(junk.size(), d.t);
  const auto ev = d.b->next(d.t);
  EXPECT_EQ(ev.kind, Kind::fault);
  EXPECT_EQ(ev.fault, tunnel::Fault::malformed_frame);
  EXPECT_EQ(ev.parse, tunnel::wire::ParseStatus::bad_version);
}

TEST(LinkCore, FramesQueuedBeforeAVersion3ConnectionAreSentInVersion3) {
  tunnel::LinkConfig cfg;
  const auto t = Clock::now();
  LinkCore a(cfg, t), b(cfg, t);
  a.enqueue(udp4("10.0.0.1", "10.0.0.2", 1), t);  // queued while disconnected, before any version is known
  a.attach(0, 3, {}, t);
  b.attach(0, 3, {}, t);
  a.enqueue(udp4("10.0.0.1", "10.0.0.2", 2), t);
  pipe(a, b, t);
  EXPECT_EQ(drain(b, t).size(), 2u);
  EXPECT_EQ(b.counters().proto_errors[static_cast<std::size_t>(tunnel::wire::ParseStatus::bad_version)], 0u);
}

// ---- realtime packets on the bulk link and queued frames

using Strings = std::vector<std::string>;

// Queues a RECEIPT frame numbered `seq` (as the control channel's frames come).
void queue_receipt(LinkCore& c, std::uint64_t seq) {
  Bytes f(tunnel::wire::kHeaderSize + 8);
  tunnel::wire::encode_header(f.data(), tunnel::wire::FrameType::receipt, 0, 8);
  for (int i = 0; i < 8; ++i) f[tunnel::wire::kHeaderSize + i] = static_cast<std::uint8_t>(seq >> (56 - 8 * i));
  ASSERT_TRUE(c.queue_frame(f));
}

// One write: the bytes a single output() names (at most `max` of them) go to `to`.
void write_once(LinkCore& from, LinkCore& to, Clock::time_point now, std::size_t max = SIZE_MAX) {
  iovec iov[2];
  const int n = from.output(iov);
  std::size_t took = 0;
  for (int i = 0; i < n && took < max; ++i) {
    const auto* p = static_cast<const std::uint8_t*>(iov[i].iov_base);
    const std::size_t len = std::min(iov[i].iov_len, max - took);
    for (std::size_t off = 0; off < len;) {
      auto space = to.rx_space();
      const std::size_t k = std::min(space.size(), len - off);
      ASSERT_GT(k, 0u) << "the receiver's buffer is full";
      std::memcpy(space.data(), p + off, k);
      to.received(k, now);
      off += k;
    }
    took += len;
  }
  from.sent(took, now);
}

// What arrived, in order: "p<seq>" for a packet, "f<seq>" for a RECEIPT.
Strings arrivals(LinkCore& c, Clock::time_point now) {
  Strings out;
  for (;;) {
    const auto ev = c.next(now);
    if (ev.kind == Kind::packet) {
      out.push_back("p" + std::to_string(seq_of(Bytes(ev.packet.begin(), ev.packet.end()))));
    } else if (ev.kind == Kind::frame) {
      std::uint64_t seq = 0;
      for (std::uint8_t b : ev.frame.body) seq = seq << 8 | b;
      out.push_back("f" + std::to_string(seq));
    } else if (ev.kind == Kind::none) {
      c.rx_done();
      return out;
    } else if (ev.kind != Kind::skipped) {
      out.push_back("?");
      return out;
    }
  }
}

Bytes pkt(std::uint64_t seq) { return udp4("10.0.0.1", "10.0.0.2", seq, 200); }

void realtime_goes_first(Cores& c) {
  // Bulk alone: queued frames go ahead of the DATA that waits.
  c.a->enqueue(pkt(1), c.t);
  queue_receipt(*c.a, 100);
  pipe(*c.a, *c.b, c.t);
  EXPECT_EQ(arrivals(*c.b, c.t), (Strings{"f100", "p1"}));
  // A realtime packet waits (behind bulk of its own stream): it goes first.
  c.a->enqueue(pkt(2), c.t);
  c.a->enqueue(pkt(3), c.t, true);
  queue_receipt(*c.a, 101);
  queue_receipt(*c.a, 102);
  pipe(*c.a, *c.b, c.t);
  EXPECT_EQ(arrivals(*c.b, c.t), (Strings{"p2", "p3", "f101", "f102"}));
}

TEST(LinkCore, RealtimeOnTheBulkLinkGoesBeforeQueuedFrames) {
  Cores c;
  realtime_goes_first(c);
}

TEST(LinkCore, RealtimeGoesBeforeQueuedFramesOnAProtectedConnection) {
  Cores c;
  const tunnel::seal::Suite suite{kV, tunnel::seal::Cipher::chacha20_poly1305, tunnel::seal::Protection::encrypt};
  const auto key = tunnel::keys::parse_key(kKeyHex);
  tunnel::seal::Nonce n1, n2;
  n1.fill(1);
  n2.fill(2);
  c.a->detach(c.t);
  c.b->detach(c.t);
  c.a->attach(0, kV, {}, c.t, tunnel::seal::make_link_crypto(key, n1, n2, tunnel::seal::Role::cpe, suite));
  c.b->attach(0, kV, {}, c.t, tunnel::seal::make_link_crypto(key, n1, n2, tunnel::seal::Role::gateway, suite));
  ASSERT_TRUE(c.a->is_protected());
  realtime_goes_first(c);
  EXPECT_EQ(c.b->counters().rx_forged, 0u);
}

TEST(LinkCore, QueuedFramesAlternateWithRealtimeAndAreNotStarved) {
  Cores c;
  for (std::uint64_t f = 101; f <= 103; ++f) queue_receipt(*c.a, f);
  Strings got;
  for (std::uint64_t i = 1; i <= 8; ++i) {
    c.a->enqueue(pkt(i), c.t, true);  // a realtime packet before every write
    write_once(*c.a, *c.b, c.t);
    for (auto& s : arrivals(*c.b, c.t)) got.push_back(s);
  }
  // Each frame waits for the realtime packets queued before its turn, and
  // no more than one frame goes between two realtime packets.
  EXPECT_EQ(got, (Strings{"p1", "f101", "p2", "p3", "f102", "p4", "p5", "f103", "p6", "p7", "p8"}));
}

TEST(LinkCore, AQueuedFrameBegunIsFinishedBeforeRealtime) {
  Cores c;
  queue_receipt(*c.a, 101);
  queue_receipt(*c.a, 102);
  write_once(*c.a, *c.b, c.t, 5);  // the socket takes 5 bytes of the first frame
  c.a->enqueue(pkt(1), c.t, true);
  pipe(*c.a, *c.b, c.t);
  EXPECT_EQ(arrivals(*c.b, c.t), (Strings{"f101", "p1", "f102"}));
}

TEST(LinkCore, RealtimeBehindMoreThanTheSendQueueHoldsNothingBack) {
  Cores c;  // send_queue_bytes 16 KiB
  c.a->blocked(c.t);
  const auto later = c.t + 300ms;  // stalled: packets over the send queue are kept
  for (std::uint64_t i = 1; i <= 30; ++i) ASSERT_TRUE(c.a->enqueue(udp4("10.0.0.1", "10.0.0.2", i, 1000), later));
  ASSERT_TRUE(c.a->enqueue(pkt(31), later, true));
  c.a->unblocked();
  queue_receipt(*c.a, 100);
  pipe(*c.a, *c.b, later);
  const auto got = arrivals(*c.b, later);
  ASSERT_EQ(got.size(), 32u);
  EXPECT_EQ(got.front(), "f100");  // late realtime: the frame goes first, as ahead of bulk
}

}  // namespace
TEST(LinkCore, AcksAndHeartbeatsAreNotHeldBehindRealtime) {
  Cores c;
  c.b->enqueue(pkt(1), c.t);  // data for a, so that a owes an ACK
  pipe(*c.b, *c.a, c.t);
  ASSERT_EQ(arrivals(*c.a, c.t), (Strings{"p1"}));
  queue_receipt(*c.a, 100);  // a control frame waiting for realtime
  c.a->enqueue(pkt(2), c.t);
  c.a->enqueue(pkt(3), c.t, true);
  EXPECT_EQ(c.a->tick(c.t + 100ms), tunnel::Fault::none);  // queues the ACK and a heartbeat
  write_once(*c.a, *c.b, c.t + 100ms);
  // The ACK and the heartbeat went with the DATA up to the realtime packet,
  // the RECEIPT waits for its turn.
  EXPECT_EQ(arrivals(*c.b, c.t + 100ms), (Strings{"p2", "p3"}));
  EXPECT_EQ(c.b->counters().acks_received, 1u);
  EXPECT_EQ(c.b->counters().heartbeats_received, 1u);
  EXPECT_EQ(c.b->buffer().packets(), 0u);  // released by a's ACK
  pipe(*c.a, *c.b, c.t + 100ms);
  EXPECT_EQ(arrivals(*c.b, c.t + 100ms), (Strings{"f100"}));
}

}  // namespace inproc
