#include <tunnel/link.hpp>
#include <tunnel/realtime_wire.hpp>
#include <tunnel/session.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tunnel {
namespace asio = boost::asio;

Link::Link(asio::io_context& io, TunPort& tun, Session& owner, unsigned index, const LinkConfig& cfg)
    : io_(io), tun_(tun), owner_(&owner), index_(index), core_(cfg, Clock::now()), now_(Clock::now()) {}

int Link::fd() const { return sock_ ? const_cast<asio::ip::tcp::socket&>(*sock_).native_handle() : -1; }

void Link::attach(asio::ip::tcp::socket sock, std::span<const std::uint8_t> early, std::uint64_t peer_rx,
                  std::uint8_t version, std::optional<seal::LinkCrypto> crypto) {
  drop_connection();
  now_ = Clock::now();
  if (core_.connected()) core_.detach(now_);
  sock_.emplace(std::move(sock));
  ++generation_;
  core_.attach(peer_rx, version, early, now_, std::move(crypto));
  if (!early.empty()) {
    asio::post(io_, [self = shared_from_this(), gen = generation_] {
      if (gen == self->generation_ && self->drain()) self->wait_readable();
    });
  } else {
    wait_readable();
  }
  flush();
}

void Link::drop_connection() {
  if (!sock_) return;
  tun_.flush();  // the coalescer may point into the core's receive buffer
  boost::system::error_code ec;
  sock_->close(ec);  // pending waits complete with operation_aborted and return
  sock_.reset();
  ++generation_;
  write_armed_ = false;
  token = 0;
}

void Link::detach() {
  if (!sock_) return;
  drop_connection();
  core_.detach(Clock::now());
}

void Link::close() {
  if (sock_) {
    core_.queue_close();
    write_armed_ = false;
    flush();  // whatever the socket takes now; a CLOSE that does not fit is lost with the connection
  }
  detach();
  core_.clear();
}

void Link::orphan() {
  owner_ = nullptr;
  detach();
}

void Link::fail(Fault why, std::string detail) {
  if (!sock_) return;
  detach();
  if (!owner_) return;
  // Posted, never inline: the caller may be deep in a loop over this link.
  asio::post(io_, [self = shared_from_this(), why, detail = std::move(detail)] {
    if (self->owner_) self->owner_->link_failed(*self, why, detail);
  });
}

void Link::flush() {
  if (!sock_ || write_armed_) return;
  const int fd = sock_->native_handle();
  const auto now = Clock::now();
  for (;;) {
    iovec iov[2];
    const int n = core_.output(iov);
    if (n == 0) break;
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = static_cast<std::size_t>(n);
    const ssize_t w = ::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        core_.blocked(now);
        wait_writable();
        break;
      }
      fail(Fault::socket_error, std::string("send: ") + std::strerror(errno));
      return;
    }
    ++core_.counters().send_calls;
    core_.sent(static_cast<std::size_t>(w), now);
  }
}

void Link::wait_writable() {
  if (write_armed_ || !sock_) return;
  write_armed_ = true;
  sock_->async_wait(asio::socket_base::wait_write,
                    [self = shared_from_this(), gen = generation_](const boost::system::error_code& ec) {
                      if (gen != self->generation_) return;
                      self->write_armed_ = false;
                      if (ec) {
                        self->fail(Fault::socket_error, "wait for write: " + ec.message());
                        return;
                      }
                      self->core_.unblocked();
                      self->flush();
                    });
}

void Link::tick(Clock::time_point now) {
  now_ = now;
  const Fault f = core_.tick(now);
  if (f != Fault::none) {
    fail(f, {});
    return;
  }
  flush();
}

// ---------------------------------------------------------------- receive

void Link::wait_readable() {
  if (!sock_) return;
  sock_->async_wait(asio::socket_base::wait_read,
                    [self = shared_from_this(), gen = generation_](const boost::system::error_code& ec) {
                      if (gen != self->generation_) return;
                      if (ec) {
                        self->fail(Fault::socket_error, "wait for read: " + ec.message());
                        return;
                      }
                      self->on_readable();
                    });
}

void Link::on_readable() {
  const std::uint64_t gen = generation_;
  for (unsigned i = 0; i < kRecvBatch; ++i) {
    const auto space = core_.rx_space();
    const ssize_t r = ::recv(sock_->native_handle(), space.data(), space.size(), MSG_DONTWAIT);
    if (r == 0) {
      fail(Fault::peer_disconnected, {});
      return;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        wait_readable();
        return;
      }
      fail(Fault::socket_error, std::string("recv: ") + std::strerror(errno));
      return;
    }
    now_ = Clock::now();
    core_.received(static_cast<std::size_t>(r), now_);
    if (!drain()) return;
  }
  asio::post(io_, [self = shared_from_this(), gen] {
    if (gen == self->generation_) self->on_readable();
  });
}

bool Link::drain() {
  for (;;) {
    const LinkCore::RxEvent ev = core_.next(now_);
    switch (ev.kind) {
      case LinkCore::RxKind::packet:
        if (owner_ && owner_->source_ok(ev.packet)) {
          tun_.write(ev.packet);
        } else {
          ++core_.counters().drop_spoofed;
          tun_.flush();
        }
        continue;
      case LinkCore::RxKind::skipped:
        tun_.flush();
        continue;
      case LinkCore::RxKind::frame: {
        if (ev.frame.type == wire::FrameType::rt_data) {  // the hot realtime path: no call through SessionEvents
          realtime::RtData rt;
          if (realtime::parse_rt_data(ev.frame.body, rt) != realtime::BodyError::ok) {
            fail(Fault::malformed_frame, "RT_DATA");
            return false;
          }
          auto& c = core_.counters();
          if (owner_ && owner_->first_copy(rt.rseq)) {
            ++c.rx_packets;
            c.rx_bytes += rt.packet.size();
            if (owner_->source_ok(rt.packet)) {
              tun_.write(rt.packet);
              continue;
            }
            ++c.drop_spoofed;
          } else {
            ++c.rx_rt_copies;
          }
          tun_.flush();
          continue;
        }
        tun_.flush();
        const std::uint64_t gen = generation_;
        const FrameVerdict v = owner_ ? owner_->frame_received(*this, ev.frame) : FrameVerdict{Fault::unexpected_frame, {}};
        if (v.fault != Fault::none) {
          if (v.fault == Fault::malformed_control)
            ++core_.counters().proto_errors[static_cast<std::size_t>(wire::ParseStatus::bad_control)];
          std::string detail(wire::to_string(ev.frame.type));
          if (!v.detail.empty()) detail.append(": ").append(v.detail);
          fail(v.fault, std::move(detail));
          return false;
        }
        if (gen != generation_) return false;  // the handler ended this connection
        continue;
      }
      case LinkCore::RxKind::none:
        tun_.flush();
        if (core_.rx_done()) flush();
        return true;
      case LinkCore::RxKind::closed:
        tun_.flush();
        fail(Fault::peer_closed, {});
        return false;
      case LinkCore::RxKind::error:
        tun_.flush();
        fail(Fault::peer_error, std::string(ev.text));
        return false;
      case LinkCore::RxKind::fault:
        tun_.flush();
        fail(ev.fault, ev.fault == Fault::malformed_frame ? std::string(wire::to_string(ev.parse)) : std::string());
        return false;
    }
  }
}

}  // namespace tunnel
