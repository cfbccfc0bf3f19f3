#include <tunnel/handshake_conn.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tunnel {
namespace asio = boost::asio;

HandshakeConn::HandshakeConn(asio::ip::tcp::socket sock, std::string peer)
    : sock_(std::move(sock)), timer_(sock_.get_executor()), peer_(std::move(peer)) {
  // Room for the largest handshake frame and whatever follows it in one read.
  buf_.resize(2 * (wire::kHeaderSize + wire::kMaxHandshakeBody));
  limits_.max_body = wire::kMaxHandshakeBody;
}

void HandshakeConn::set_deadline(std::chrono::milliseconds d) {
  timer_.expires_after(d);
  timer_.async_wait([self = weak_from_this()](const boost::system::error_code& ec) {
    auto s = self.lock();
    if (ec || !s) return;
    s->timed_out_ = true;
    boost::system::error_code ignored;
    s->sock_.cancel(ignored);  // the pending wait completes with operation_aborted
  });
}

void HandshakeConn::read_frame(std::uint8_t min_version, std::uint8_t max_version, OnFrame cb) {
  cb_ = std::move(cb);
  limits_.min_version = min_version;
  limits_.max_version = max_version;
  // Drop the frame handed out last time.
  if (consumed_ > 0) {
    std::memmove(buf_.data(), buf_.data() + consumed_, len_ - consumed_);
    len_ -= consumed_;
    consumed_ = 0;
  }
  on_readable();
}

void HandshakeConn::finish(Fault f, const wire::Frame& fr, std::string_view detail) {
  auto cb = std::move(cb_);
  cb_ = nullptr;
  if (cb) cb(f, fr, detail);
}

void HandshakeConn::on_readable() {
  for (;;) {
    const auto pr = wire::parse_frame({buf_.data(), len_}, limits_);
    if (pr.status == wire::ParseStatus::ok) {
      consumed_ = pr.consumed;
      finish(Fault::none, pr.frame, {});
      return;
    }
    if (pr.status != wire::ParseStatus::need_more) {
      // A small version number is a peer of another release; anything else
      // in the first byte is not our protocol at all.
      parse_ = pr.status;
      const bool other_version = pr.status == wire::ParseStatus::bad_version && buf_[0] > 0 && buf_[0] < 16;
      finish(other_version ? Fault::unsupported_version : Fault::malformed_frame, {}, wire::to_string(pr.status));
      return;
    }
    if (len_ == buf_.size()) {
      parse_ = wire::ParseStatus::bad_length;
      finish(Fault::malformed_frame, {}, "handshake frame too long");
      return;
    }
    const ssize_t r = ::recv(sock_.native_handle(), buf_.data() + len_, buf_.size() - len_, MSG_DONTWAIT);
    if (r > 0) {
      len_ += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) break;
    if (r == 0) finish(Fault::closed_in_handshake, {}, {});
    else finish(Fault::socket_error, {}, std::strerror(errno));
    return;
  }
  sock_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (!self->cb_) return;
    if (ec) {
      if (self->timed_out_) self->finish(Fault::handshake_timeout, {}, {});
      else self->finish(Fault::socket_error, {}, ec.message());
      return;
    }
    self->on_readable();
  });
}

bool HandshakeConn::send_frame(wire::FrameType type, std::uint8_t version, const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> f(wire::kHeaderSize + body.size());
  wire::encode_header(f.data(), type, 0, static_cast<std::uint32_t>(body.size()), version);
  if (!body.empty()) std::memcpy(f.data() + wire::kHeaderSize, body.data(), body.size());
  const ssize_t w = ::send(sock_.native_handle(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return w == static_cast<ssize_t>(f.size());
}

bool HandshakeConn::send_error(std::string_view reason, std::uint8_t version) {
  std::vector<std::uint8_t> f(wire::kHeaderSize + 256);
  f.resize(wire::encode_error(f.data(), reason, version));
  return ::send(sock_.native_handle(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL) ==
         static_cast<ssize_t>(f.size());
}

void HandshakeConn::close() {
  timer_.cancel();
  cb_ = nullptr;
  boost::system::error_code ec;
  sock_.close(ec);
}

asio::ip::tcp::socket HandshakeConn::take_socket() {
  timer_.cancel();
  cb_ = nullptr;
  return std::move(sock_);
}

std::vector<std::uint8_t> HandshakeConn::leftover() const {
  return {buf_.begin() + static_cast<std::ptrdiff_t>(consumed_), buf_.begin() + static_cast<std::ptrdiff_t>(len_)};
}

}  // namespace tunnel
