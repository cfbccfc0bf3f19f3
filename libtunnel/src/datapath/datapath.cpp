// See datapath.hpp for the flow of each direction.
#include <tunnel/datapath.hpp>
#include <tunnel/ip_packet.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tunnel {
namespace asio = boost::asio;

namespace {
std::uint32_t frame_len_at(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(wire::kHeaderSize) +
         ((std::uint32_t{p[4]} << 24) | (std::uint32_t{p[5]} << 16) | (std::uint32_t{p[6]} << 8) | p[7]);
}
}  // namespace

Datapath::Datapath(asio::io_context& io, int tun_fd, const DatapathConfig& cfg)
    : io_(io), cfg_(cfg), tun_(io, ::dup(tun_fd)) {
  const std::size_t max_frame = wire::kDataHeaderSize + cfg_.mtu;
  sq_cap_ = std::max(cfg_.send_queue_bytes, 2 * max_frame);
  sq_ = std::make_unique<std::uint8_t[]>(sq_cap_);
  scratch_ = std::make_unique<std::uint8_t[]>(max_frame);
  // The receiver must hold the largest frame a peer may send, whatever our MTU.
  rb_cap_ = std::max(cfg_.recv_buffer_bytes, 2 * (wire::kDataHeaderSize + wire::kMaxPacket));
  rb_ = std::make_unique<std::uint8_t[]>(rb_cap_);
  limits_.max_body = wire::kDsnSize + wire::kMaxPacket;
}

Datapath::~Datapath() { stop(); }

void Datapath::start() { wait_tun(); }

void Datapath::stop() {
  stopped_ = true;
  detach();
  boost::system::error_code ec;
  tun_.cancel(ec);
}

int Datapath::socket_fd() { return sock_ ? sock_->native_handle() : -1; }

void Datapath::attach(asio::ip::tcp::socket sock, CloseHandler on_close) {
  detach();
  sock_.emplace(std::move(sock));
  on_close_ = std::move(on_close);
  ++generation_;
  ++c_.connections;
  rlen_ = 0;
  expected_dsn_ = 0;
  write_armed_ = false;
  wait_readable();
}

void Datapath::detach() {
  if (!sock_) return;
  boost::system::error_code ec;
  sock_->close(ec);
  sock_.reset();
  on_close_ = nullptr;
  ++generation_;
  write_armed_ = false;
  discard_queue();
}

void Datapath::send_heartbeat() {
  if (!sock_) return;
  if (sq_cap_ - tail_ < wire::kHeaderSize) {
    ++c_.drop_heartbeat;
    return;
  }
  tail_ += wire::encode_empty(sq_.get() + tail_, wire::FrameType::heartbeat);
  ++c_.tx_heartbeats;
  if (!write_armed_) flush();
}

void Datapath::close_gracefully() {
  if (!sock_) return;
  flush();
  std::uint8_t buf[wire::kHeaderSize];
  const std::size_t n = wire::encode_empty(buf, wire::FrameType::close);
  if (head_ == tail_) {  // only when no partial frame is in the way
    (void)::send(sock_->native_handle(), buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  detach();
}

void Datapath::discard_queue() {
  for (std::size_t off = head_frame_; off < tail_; off += frame_len_at(&sq_[off])) ++c_.drop_disconnect;
  head_ = tail_ = head_frame_ = 0;
}

void Datapath::fail(const std::string& reason) {
  if (!sock_) return;
  CloseHandler h = std::move(on_close_);
  detach();
  if (h) asio::post(io_, [h = std::move(h), reason] { h(reason); });
}

// ---------------------------------------------------------------- TUN -> tunnel

void Datapath::wait_tun() {
  if (stopped_) return;
  tun_.async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted) spdlog::error("TUN wait failed: {}", ec.message());
      return;
    }
    on_tun_readable();
  });
}

void Datapath::on_tun_readable() {
  if (stopped_) return;
  const std::size_t need = wire::kDataHeaderSize + cfg_.mtu;
  const int fd = tun_.native_handle();
  unsigned n = 0;
  bool drained = false;
  for (; n < cfg_.tun_batch; ++n) {
    if (sock_ && sq_cap_ - tail_ < need && head_ > 0) {
      // Compact: move the unsent bytes to the front.
      std::memmove(sq_.get(), sq_.get() + head_, tail_ - head_);
      tail_ -= head_;
      head_frame_ -= head_;
      head_ = 0;
    }
    const bool queued = sock_ && sq_cap_ - tail_ >= need;
    std::uint8_t* frame = queued ? sq_.get() + tail_ : scratch_.get();
    // With a virtio-net header, it lands in the frame header's room and is
    // overwritten by it: the packet still starts at kDataHeaderSize.
    const std::size_t vh = cfg_.vnet_hdr ? sizeof(gso::VnetHdr) : 0;
    ssize_t r = ::read(fd, frame + wire::kDataHeaderSize - vh, cfg_.mtu + vh);
    if (r >= 0 && vh) {
      if (static_cast<std::size_t>(r) < vh || frame[wire::kDataHeaderSize - vh + 1] != gso::kGsoNone) {
        ++c_.tun_rx_packets;
        ++c_.drop_malformed;
        continue;
      }
      r -= static_cast<ssize_t>(vh);
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) spdlog::error("TUN read failed: {}", std::strerror(errno));
      drained = true;
      break;
    }
    ++c_.tun_rx_packets;
    const std::size_t len = static_cast<std::size_t>(r);
    const ip::Kind kind = ip::classify({frame + wire::kDataHeaderSize, len});
    if (kind == ip::Kind::malformed) {
      ++c_.drop_malformed;
      continue;
    }
    if (!ip::is_udp(kind) && !cfg_.allow_non_udp) {
      ++c_.drop_non_udp;
      continue;
    }
    if (!queued) {
      ++(sock_ ? c_.drop_queue_full : c_.drop_no_tunnel);
      continue;
    }
    wire::encode_data_header(frame, next_dsn_++, len);
    tail_ += wire::kDataHeaderSize + len;
    ++c_.tx_packets;
    c_.tx_bytes += len;
  }
  if (sock_ && !write_armed_) flush();
  if (drained) {
    wait_tun();
  } else {
    asio::post(io_, [this] { on_tun_readable(); });  // more may be waiting: yield, then go on
  }
}

void Datapath::flush() {
  if (!sock_) return;
  const int fd = sock_->native_handle();
  while (head_ < tail_) {
    const ssize_t w = ::send(fd, sq_.get() + head_, tail_ - head_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      ++c_.send_calls;
      head_ += static_cast<std::size_t>(w);
      while (head_frame_ < tail_ && head_frame_ + frame_len_at(&sq_[head_frame_]) <= head_)
        head_frame_ += frame_len_at(&sq_[head_frame_]);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      wait_writable();
      return;
    }
    fail(std::string("send: ") + std::strerror(errno));
    return;
  }
  head_ = tail_ = head_frame_ = 0;
}

void Datapath::wait_writable() {
  if (write_armed_ || !sock_) return;
  write_armed_ = true;
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

// ---------------------------------------------------------------- tunnel -> TUN

void Datapath::wait_readable() {
  if (!sock_) return;
  sock_->async_wait(asio::socket_base::wait_read, [this, gen = generation_](const boost::system::error_code& ec) {
    if (gen != generation_) return;
    if (ec) {
      if (ec != asio::error::operation_aborted) fail("wait for read: " + ec.message());
      return;
    }
    on_sock_readable();
  });
}

void Datapath::on_sock_readable() {
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
    rlen_ += static_cast<std::size_t>(r);
    std::size_t off = 0;
    for (;;) {
      const wire::ParseResult pr = wire::parse_frame({rb_.get() + off, rlen_ - off}, limits_);
      if (pr.status == wire::ParseStatus::need_more) break;
      if (pr.status != wire::ParseStatus::ok) {
        flush_tun();
        ++c_.proto_errors[static_cast<std::size_t>(pr.status)];
        fail("malformed frame from peer: " + std::string(wire::to_string(pr.status)));
        return;
      }
      off += pr.consumed;
      if (!handle_frame(pr.frame) || gen != generation_) {
        flush_tun();
        return;
      }
    }
    flush_tun();  // the coalescer points into rb_: write before it moves
    if (off > 0) {
      std::memmove(rb_.get(), rb_.get() + off, rlen_ - off);
      rlen_ -= off;
    }
  }
  asio::post(io_, [this, gen] {
    if (gen == generation_) on_sock_readable();
  });
}

bool Datapath::handle_frame(const wire::Frame& f) {
  switch (f.type) {
    case wire::FrameType::data: {
      ++c_.rx_packets;
      c_.rx_bytes += f.body.size();
      if (expected_dsn_ != 0 && f.dsn != expected_dsn_) ++c_.dsn_gaps;
      expected_dsn_ = f.dsn + 1;
      write_tun(f.body);
      return true;
    }
    case wire::FrameType::close:
      fail("peer sent CLOSE");
      return false;
    case wire::FrameType::error:
      fail("peer sent ERROR: " +
           std::string(reinterpret_cast<const char*>(f.body.data()), f.body.size()));
      return false;
    default:
      ++c_.rx_control_frames;
      return true;
  }
}

void Datapath::write_tun(std::span<const std::uint8_t> pkt) {
  if (!cfg_.vnet_hdr) {
    ++c_.tun_writes;
    if (::write(tun_.native_handle(), pkt.data(), pkt.size()) == static_cast<ssize_t>(pkt.size()))
      ++c_.tun_tx_packets;
    else
      ++c_.drop_tun_write;
    return;
  }
  if (!coalescer_.add(pkt)) {
    flush_tun();
    coalescer_.add(pkt);
  }
}

void Datapath::flush_tun() {
  if (coalescer_.empty()) return;
  const std::size_t n = coalescer_.count();
  iovec iov[2];
  coalescer_.emit(iov);
  ++c_.tun_writes;
  const ssize_t w = ::writev(tun_.native_handle(), iov, 2);
  if (w == static_cast<ssize_t>(iov[0].iov_len + iov[1].iov_len))
    c_.tun_tx_packets += n;
  else
    c_.drop_tun_write += n;
}

}  // namespace tunnel
