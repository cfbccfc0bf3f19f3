#include <tunnel/ip_packet.hpp>
#include <tunnel/tun_port.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace tunnel {
namespace asio = boost::asio;

namespace {
int dup_or_throw(int fd) {
  const int d = ::dup(fd);
  if (d < 0) throw std::system_error(errno, std::generic_category(), "dup(TUN fd)");
  return d;
}
}  // namespace

TunPort::TunPort(asio::io_context& io, int tun_fd, const TunPortConfig& cfg, Sink sink)
    : io_(io), cfg_(cfg), fd_(io, dup_or_throw(tun_fd)), sink_(std::move(sink)) {
  slot_ = sizeof(gso::VnetHdr) + cfg_.mtu;
  // At most 4 MiB of slots, whatever the MTU.
  batch_ = static_cast<unsigned>(std::clamp<std::size_t>((4u << 20) / slot_, 1, std::max(1u, cfg_.batch)));
  buf_ = std::make_unique<std::uint8_t[]>(batch_ * slot_);
  pkts_ = std::make_unique<std::span<const std::uint8_t>[]>(batch_);
}

void TunPort::start() { wait(); }

void TunPort::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  fd_.cancel(ec);
}

void TunPort::wait() {
  if (stopped_) return;
  fd_.async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted) fail("wait: " + ec.message());
      return;
    }
    on_readable();
  });
}

void TunPort::on_readable() {
  if (stopped_) return;
  const std::size_t vh = cfg_.vnet_hdr ? sizeof(gso::VnetHdr) : 0;
  bool drained = false;
  std::size_t got = 0;
  for (unsigned n = 0; n < batch_; ++n) {
    std::uint8_t* slot = buf_.get() + got * slot_;
    ssize_t r = ::read(fd_.native_handle(), slot, vh + cfg_.mtu);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        if (got) sink_(Packets(pkts_.get(), got));
        return fail(std::string("read: ") + std::strerror(errno));
      }
      drained = true;
      break;
    }
    if (r == 0) {  // a TUN never reads empty: the device (or the test's socket) is gone
      if (got) sink_(Packets(pkts_.get(), got));
      return fail("read: end of file");
    }
    ++c_.rx_packets;
    if (vh && (static_cast<std::size_t>(r) < vh || slot[1] != gso::kGsoNone)) {
      ++c_.drop_malformed;
      continue;
    }
    const std::span<const std::uint8_t> pkt(slot + vh, static_cast<std::size_t>(r) - vh);
    const ip::Kind kind = ip::classify(pkt);
    if (kind == ip::Kind::malformed) {
      ++c_.drop_malformed;
      continue;
    }
    if (!ip::is_udp(kind) && !cfg_.allow_non_udp) {
      ++c_.drop_non_udp;
      continue;
    }
    pkts_[got++] = pkt;
  }
  if (got) sink_(Packets(pkts_.get(), got));
  if (drained) {
    wait();
  } else {
    asio::post(io_, [this] { on_readable(); });  // more may be waiting: yield, then go on
  }
}

void TunPort::write(std::span<const std::uint8_t> pkt) {
  if (!cfg_.vnet_hdr) {
    ++c_.writes;
    if (::write(fd_.native_handle(), pkt.data(), pkt.size()) == static_cast<ssize_t>(pkt.size()))
      ++c_.tx_packets;
    else
      write_failed(errno, 1);
    return;
  }
  if (!coalescer_.add(pkt)) {
    flush();
    coalescer_.add(pkt);
  }
}

void TunPort::flush() {
  if (coalescer_.empty()) return;
  const std::size_t n = coalescer_.count();
  iovec iov[2];
  coalescer_.emit(iov);
  ++c_.writes;
  const ssize_t w = ::writev(fd_.native_handle(), iov, 2);
  if (w == static_cast<ssize_t>(iov[0].iov_len + iov[1].iov_len))
    c_.tx_packets += n;
  else
    write_failed(w < 0 ? errno : 0, n);
}

void TunPort::write_failed(int err, std::size_t n) {
  c_.drop_write += n;
  if (err == EBADFD || err == ENODEV || err == ENXIO || err == EPIPE || err == ECONNRESET)
    fail(std::string("write: ") + std::strerror(err));
}

void TunPort::fail(std::string why) {
  if (failed_) return;
  failed_ = stopped_ = true;
  boost::system::error_code ec;
  fd_.cancel(ec);
  if (on_failure_) asio::post(io_, [f = on_failure_, why = std::move(why)] { f(why); });
}

}  // namespace tunnel
