// See session.hpp for how a session sends, receives and resumes.
#include <tunnel/session.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tunnel {
namespace asio = boost::asio;

namespace {
std::int64_t to_ms(Session::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

Session::Session(asio::io_context& io, TunPort& tun, const SessionConfig& cfg, std::uint64_t id, RxFilter filter)
    : io_(io),
      tun_(tun),
      cfg_(cfg),
      id_(id),
      filter_(std::move(filter)),
      live_(cfg.heartbeat, cfg.dead_interval, cfg.hold),
      tx_(std::max(cfg.buffer_bytes, 4 * (wire::kDataHeaderSize + cfg.mtu))),
      queue_(cfg.send_queue_bytes),
      writer_(cfg.compress),
      now_ms_(to_ms(Clock::now())) {
  // The receiver must hold the largest frame a peer may send, whatever our MTU.
  rb_cap_ = std::max(cfg_.recv_buffer_bytes, 2 * (wire::kDataHeaderSize + wire::kMaxPacket));
  rb_ = std::make_unique<std::uint8_t[]>(rb_cap_);
  limits_.max_body = wire::kDsnSize + wire::kMaxPacket;
}

Session::~Session() { drop_connection(); }

int Session::socket_fd() const { return sock_ ? const_cast<asio::ip::tcp::socket&>(*sock_).native_handle() : -1; }

void Session::attach(asio::ip::tcp::socket sock, std::span<const std::uint8_t> early, std::uint64_t peer_rx,
                     CloseHandler on_close) {
  drop_connection();
  sock_.emplace(std::move(sock));
  on_close_ = std::move(on_close);
  ++generation_;
  if (c_.connections++ > 0) ++c_.resumes;
  tx_.resume_from(peer_rx);
  c_.replayed += tx_.unsent_packets();
  queue_.exempt_all(tx_);  // the replay may exceed the send queue; new packets still get theirs
  const std::size_t n = std::min(early.size(), rb_cap_);
  std::memcpy(rb_.get(), early.data(), n);
  rlen_ = n;
  acked_sent_ = rx_last_;
  live_.connected(Clock::now());
  if (rlen_ > 0) {
    asio::post(io_, [this, gen = generation_] {
      if (gen != generation_) return;
      std::size_t off = 0;
      if (parse_frames(off)) wait_readable();
    });
  } else {
    wait_readable();
  }
  flush();
}

void Session::drop_connection() {
  if (!sock_) return;
  tun_.flush();  // the coalescer may point into rb_
  boost::system::error_code ec;
  sock_->close(ec);
  sock_.reset();
  on_close_ = nullptr;
  ++generation_;
  write_armed_ = false;
  ctl_len_ = ctl_off_ = 0;
  rlen_ = 0;
  token = 0;
}

void Session::detach(const std::string& reason) {
  if (!sock_) return;
  spdlog::debug("session {:016x}: connection dropped: {}", id_, reason);
  drop_connection();
  live_.disconnected(Clock::now());
  tx_.restart();
}

void Session::fail(const std::string& reason, bool clean) {
  if (!sock_) return;
  CloseHandler h = std::move(on_close_);
  detach(reason);
  if (h) asio::post(io_, [h = std::move(h), reason, clean] { h(reason, clean); });
}

void Session::close() {
  if (sock_) {
    // Best effort within half a second: finish the frame in progress, then CLOSE.
    const int fd = sock_->native_handle();
    std::uint8_t cf[wire::kHeaderSize];
    wire::encode_empty(cf, wire::FrameType::close);
    const auto deadline = Clock::now() + std::chrono::milliseconds(500);
    std::size_t close_off = 0;
    while (close_off < sizeof cf && Clock::now() < deadline) {
      iovec iov[2];
      int n = 0;
      if (ctl_off_ < ctl_len_ && tx_.at_frame_boundary()) iov[n++] = {ctl_.data() + ctl_off_, ctl_len_ - ctl_off_};
      else if (!tx_.at_frame_boundary()) iov[n++] = {const_cast<std::uint8_t*>(tx_.unsent().data()), tx_.to_boundary()};
      else iov[n++] = {cf + close_off, sizeof cf - close_off};
      const ssize_t w = ::writev(fd, iov, n);
      if (w < 0 && errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 50);
        continue;
      }
      if (w <= 0) break;
      const std::size_t ww = static_cast<std::size_t>(w);
      if (iov[0].iov_base == cf + close_off) close_off += ww;
      else if (iov[0].iov_base == ctl_.data() + ctl_off_) ctl_off_ += ww;
      else tx_.sent(ww);
    }
    drop_connection();
  }
  live_.disconnected(Clock::now());
  tx_.clear();
}

void Session::reset(std::uint64_t new_id) {
  drop_connection();
  tx_.clear();
  id_ = new_id;
  rx_last_ = acked_sent_ = 0;
  rx_started_ = false;
  live_.restart_hold(Clock::now());
}

// ---------------------------------------------------------------- send

bool Session::enqueue(std::span<const std::uint8_t> pkt) {
  // Over the send queue while connected: if data moves (the socket takes it
  // and the peer's ACKs advance), the tunnel is overloaded, and new packets
  // are dropped to bound the latency. If the socket took nothing, or the
  // peer acknowledged nothing, for cfg_.stall_after, the connection is
  // stalled (a path died under MPTCP and its data waits for reinjection):
  // packets are kept, like during an outage, and what the stall kept does
  // not count against the send queue once data moves again (send_queue.hpp).
  SendQueue::Admit admit = SendQueue::Admit::take;
  if (sock_) {
    admit = queue_.admit(tx_, [this] {
      const auto now = Clock::now();
      return (write_armed_ && now - write_wait_since_ > cfg_.stall_after) || live_.ack_stalled(now, cfg_.stall_after);
    });
    if (admit == SendQueue::Admit::drop) {
      ++c_.drop_queue_full;
      return false;
    }
  }
  // Into the last frame while it waits unsent and has room (the writer
  // began it: every frame comes from here); else a frame of its own.
  const std::size_t frame_cap = std::min(cfg_.batch_bytes, wire::kDataHeaderSize + wire::kMaxPacket);
  std::uint8_t* frame = nullptr;
  if (tx_.tail_open() && tx_.tail_len() + pkt.size() <= frame_cap) frame = tx_.extend_tail(pkt.size());
  if (frame) {
    const std::size_t n = writer_.append(frame, tx_.tail_len(), pkt);
    if (n < pkt.size()) ++c_.tx_compressed;
    tx_.extend_commit(n, next_dsn_++);
  } else {
    frame = tx_.prepare(wire::kDataHeaderSize + pkt.size());
    if (!frame) {
      ++c_.drop_queue_full;
      return false;
    }
    tx_.commit(writer_.begin(frame, next_dsn_, pkt), next_dsn_, now_ms_);
    ++next_dsn_;
    ++c_.tx_frames;
  }
  if (admit == SendQueue::Admit::keep) queue_.exempt_all(tx_);
  ++c_.tx_packets;
  c_.tx_bytes += pkt.size();
  if (!sock_ || tx_.unsent_bytes() > cfg_.send_queue_bytes)
    c_.peak_buffered = std::max<std::uint64_t>(c_.peak_buffered, tx_.unsent_packets());
  const bool first = !flush_pending_;
  flush_pending_ = true;
  return first;
}

void Session::queue_control(const std::uint8_t* p, std::size_t n) {
  if (ctl_.size() - ctl_len_ < n) {
    ++c_.drop_control;
    return;
  }
  std::memcpy(ctl_.data() + ctl_len_, p, n);
  ctl_len_ += n;
}

void Session::queue_ack() {
  std::uint8_t b[wire::kHeaderSize + wire::kDsnSize];
  queue_control(b, wire::encode_ack(b, rx_last_));
  acked_sent_ = rx_last_;
  rx_unacked_bytes_ = 0;
  ++c_.acks_sent;
}

void Session::flush() {
  flush_pending_ = false;
  if (!sock_ || write_armed_) return;
  const bool had_unacked = tx_.unacked_sent_frames() > 0;
  const int fd = sock_->native_handle();
  for (;;) {
    iovec iov[2];
    int n = 0;
    std::size_t ctl_part = 0;
    const bool boundary = tx_.at_frame_boundary();
    if (ctl_off_ < ctl_len_ && boundary) {
      ctl_part = ctl_len_ - ctl_off_;
      iov[n++] = {ctl_.data() + ctl_off_, ctl_part};
    }
    const auto d = tx_.unsent();
    if (!d.empty()) {
      // A control frame waits for the end of the frame in progress only.
      const std::size_t len = (ctl_off_ < ctl_len_ && !boundary) ? tx_.to_boundary() : d.size();
      iov[n++] = {const_cast<std::uint8_t*>(d.data()), len};
    }
    if (n == 0) break;
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = static_cast<std::size_t>(n);
    const ssize_t w = ::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        wait_writable();
        break;
      }
      fail(std::string("send: ") + std::strerror(errno));
      return;
    }
    ++c_.send_calls;
    std::size_t ww = static_cast<std::size_t>(w);
    const std::size_t c = std::min(ww, ctl_part);
    ctl_off_ += c;
    ww -= c;
    if (ctl_off_ == ctl_len_) ctl_off_ = ctl_len_ = 0;
    if (ww) tx_.sent(ww);
  }
  if (!had_unacked && tx_.unacked_sent_frames() > 0) live_.on_unacked(Clock::now());
}

void Session::wait_writable() {
  if (write_armed_ || !sock_) return;
  write_armed_ = true;
  write_wait_since_ = Clock::now();
  sock_->async_wait(asio::socket_base::wait_write, [this, gen = generation_](const boost::system::error_code& ec) {
    if (gen != generation_) return;
    write_armed_ = false;
    if (ec) {
      if (ec != asio::error::operation_aborted) fail("wait for write: " + ec.message());
      return;
    }
    flush();
  });
}

bool Session::tick(Clock::time_point now) {
  now_ms_ = to_ms(now);
  if (sock_) {
    if (const char* why = live_.dead(now)) {
      fail(why);
    } else {
      if (rx_last_ != acked_sent_) queue_ack();
      if (live_.heartbeat_due(now)) {
        std::uint8_t b[wire::kHeaderSize];
        queue_control(b, wire::encode_empty(b, wire::FrameType::heartbeat));
        ++c_.heartbeats_sent;
        live_.heartbeat_sent(now);
      }
      flush();
    }
  }
  tx_.expire(to_ms(now), cfg_.buffer_age.count());
  return !live_.expired(now);
}

// ---------------------------------------------------------------- receive

// One packet of a DATA frame. A packet the reader rebuilt lives until its
// second next() call after; the TUN port holds the last packet written until
// the next write() or flush(). So a packet not written flushes the port, or
// the reader could overwrite what the port still holds.
void Session::deliver(std::uint64_t dsn, std::span<const std::uint8_t> pkt) {
  if (rx_started_ && dsn <= rx_last_) {
    ++c_.rx_duplicates;
    tun_.flush();
    return;
  }
  if (rx_started_ && dsn > rx_last_ + 1) c_.rx_missing += dsn - rx_last_ - 1;
  rx_started_ = true;
  rx_last_ = dsn;
  ++c_.rx_packets;
  c_.rx_bytes += pkt.size();
  rx_unacked_bytes_ += pkt.size();
  if (filter_ && !filter_(pkt)) {
    ++c_.drop_spoofed;
    tun_.flush();
    return;
  }
  tun_.write(pkt);
}

void Session::wait_readable() {
  if (!sock_) return;
  sock_->async_wait(asio::socket_base::wait_read, [this, gen = generation_](const boost::system::error_code& ec) {
    if (gen != generation_) return;
    if (ec) {
      if (ec != asio::error::operation_aborted) fail("wait for read: " + ec.message());
      return;
    }
    on_readable();
  });
}

void Session::on_readable() {
  const std::uint64_t gen = generation_;
  for (unsigned i = 0; i < cfg_.recv_batch; ++i) {
    const ssize_t r = ::recv(sock_->native_handle(), rb_.get() + rlen_, rb_cap_ - rlen_, MSG_DONTWAIT);
    if (r == 0) {
      fail("peer closed the connection");
      return;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        wait_readable();
        return;
      }
      fail(std::string("recv: ") + std::strerror(errno));
      return;
    }
    live_.on_rx(Clock::now());
    rlen_ += static_cast<std::size_t>(r);
    std::size_t off = 0;
    if (!parse_frames(off)) return;
  }
  asio::post(io_, [this, gen] {
    if (gen == generation_) on_readable();
  });
}

// Parses every whole frame in [0, rlen_), keeps the partial rest. False when
// the connection ended on the way.
bool Session::parse_frames(std::size_t& off) {
  const std::uint64_t gen = generation_;
  for (;;) {
    const wire::ParseResult pr = wire::parse_frame({rb_.get() + off, rlen_ - off}, limits_);
    if (pr.status == wire::ParseStatus::need_more) break;
    if (pr.status != wire::ParseStatus::ok) {
      ++c_.proto_errors[static_cast<std::size_t>(pr.status)];
      fail("malformed frame from peer: " + std::string(wire::to_string(pr.status)));
      return false;
    }
    off += pr.consumed;
    if (!handle_frame(pr.frame) || gen != generation_) {
      tun_.flush();
      return false;
    }
  }
  tun_.flush();  // the coalescer points into rb_: write before it moves
  if (off > 0) {
    std::memmove(rb_.get(), rb_.get() + off, rlen_ - off);
    rlen_ -= off;
  }
  if (rx_unacked_bytes_ >= cfg_.ack_bytes) {
    queue_ack();
    flush();
  }
  return true;
}

bool Session::handle_frame(const wire::Frame& f) {
  switch (f.type) {
    case wire::FrameType::data: {
      reader_.start(f.body);
      std::uint64_t dsn = f.dsn;
      for (auto pkt = reader_.next(); !pkt.empty(); pkt = reader_.next()) deliver(dsn++, pkt);
      return true;
    }
    case wire::FrameType::ack: {
      ++c_.acks_received;
      const std::size_t before = tx_.unacked_sent_frames();
      tx_.ack(f.dsn);
      if (tx_.unacked_sent_frames() != before) live_.on_ack(Clock::now(), tx_.unacked_sent_frames() > 0);
      return true;
    }
    case wire::FrameType::heartbeat:
      ++c_.heartbeats_received;
      return true;
    case wire::FrameType::close:
      fail("peer sent CLOSE", true);
      return false;
    case wire::FrameType::error:
      fail("peer sent ERROR: " + std::string(reinterpret_cast<const char*>(f.body.data()), f.body.size()));
      return false;
    default:
      fail("unexpected " + std::string(wire::to_string(f.type)) + " after the handshake");
      return false;
  }
}

}  // namespace tunnel
