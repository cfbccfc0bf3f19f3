#include "harness.hpp"

#include <tunnel/handshake.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <sstream>
#include <stdexcept>

namespace inproc {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

MemTun::MemTun() {
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_) != 0)
    throw std::runtime_error("socketpair");
  const int big = 4 << 20;
  for (int fd : fds_) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
}

MemTun::~MemTun() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void MemTun::inject(const Bytes& pkt) {
  if (::send(fds_[1], pkt.data(), pkt.size(), 0) != static_cast<ssize_t>(pkt.size()))
    throw std::runtime_error("MemTun::inject");
}

void MemTun::drain(std::vector<Bytes>& out) {
  std::array<std::uint8_t, 70000> buf;
  for (;;) {
    const ssize_t r = ::recv(fds_[1], buf.data(), buf.size(), MSG_DONTWAIT);
    if (r <= 0) return;
    out.emplace_back(buf.begin(), buf.begin() + r);
  }
}

void MemTun::vanish() {
  if (fds_[1] >= 0) ::close(fds_[1]);
  fds_[1] = -1;
}

Bytes udp4(const char* src, const char* dst, std::uint64_t seq, std::size_t payload, std::uint8_t tos) {
  Bytes p(28 + payload, 0);
  p[0] = 0x45;
  p[1] = tos;
  p[2] = static_cast<std::uint8_t>(p.size() >> 8);
  p[3] = static_cast<std::uint8_t>(p.size());
  p[4] = static_cast<std::uint8_t>(seq >> 8);  // identification
  p[5] = static_cast<std::uint8_t>(seq);
  p[8] = 64;
  p[9] = 17;
  ::inet_pton(AF_INET, src, &p[12]);
  ::inet_pton(AF_INET, dst, &p[16]);
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<std::uint8_t>(~sum >> 8);
  p[11] = static_cast<std::uint8_t>(~sum);
  p[20] = 0x30, p[21] = 0x39, p[22] = 0x30, p[23] = 0x3a;  // ports 12345 -> 12346
  p[24] = static_cast<std::uint8_t>((8 + payload) >> 8);
  p[25] = static_cast<std::uint8_t>(8 + payload);
  for (int i = 0; i < 8 && static_cast<std::size_t>(i) < payload; ++i) p[28 + i] = static_cast<std::uint8_t>(seq >> (56 - 8 * i));
  for (std::size_t i = 8; i < payload; ++i) p[28 + i] = static_cast<std::uint8_t>(seq * 7 + i);
  return p;
}

std::uint64_t seq_of(const Bytes& pkt) {
  std::uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s = (s << 8) | pkt.at(28 + static_cast<std::size_t>(i));
  return s;
}

// ---------------------------------------------------------------- relay

struct Relay::Pair : std::enable_shared_from_this<Relay::Pair> {
  Pair(asio::io_context& io, tcp::socket a, Relay& r) : a(std::move(a)), b(io), stalled(r.stalled_), relay(r) {}
  tcp::socket a, b;
  const bool& stalled;
  Relay& relay;  // outlives every pair's handlers: ~Relay shuts them (aborted handlers touch no state)
  std::array<std::uint8_t, 16384> ab{}, ba{};
  void pump(tcp::socket& from, tcp::socket& to, std::array<std::uint8_t, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](boost::system::error_code ec,
                                                                                            std::size_t n) {
      if (ec) return self->shut();
      self->forward(from, to, buf, n);
    });
  }
  void forward(tcp::socket& from, tcp::socket& to, std::array<std::uint8_t, 16384>& buf, std::size_t n) {
    if (stalled || (&from == &a && relay.stalled_to_target_)) {  // hold the bytes and look again later
      auto t = std::make_shared<asio::steady_timer>(from.get_executor(), 20ms);
      t->async_wait([self = shared_from_this(), t, &from, &to, &buf, n](boost::system::error_code ec) {
        if (!ec) self->forward(from, to, buf, n);
      });
      return;
    }
    Tamper& t = relay.tamper_;
    if (t.armed && (&from == &a) == t.to_target && n > 0) {
      t.armed = false;
      t.done = true;
      if (t.splice.empty()) {
        buf[std::min(t.at, n - 1)] ^= 0x01;
      } else {
        boost::system::error_code ec;
        asio::write(to, asio::buffer(t.splice), ec);
      }
    }
    if (relay.capture_on_) relay.captured_.insert(relay.captured_.end(), buf.data(), buf.data() + n);
    asio::async_write(to, asio::buffer(buf.data(), n),
                      [self = shared_from_this(), &from, &to, &buf](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->shut();
                        self->pump(from, to, buf);
                      });
  }
  void shut() {
    boost::system::error_code ec;
    a.set_option(asio::socket_base::linger(true, 0), ec);
    b.set_option(asio::socket_base::linger(true, 0), ec);
    a.close(ec);
    b.close(ec);
  }
};

Relay::Relay(asio::io_context& io, tcp::endpoint target)
    : io_(io), target_(target), acc_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  accept();
}

Relay::~Relay() {
  boost::system::error_code ec;
  acc_.close(ec);
  for (auto& p : pairs_) p->shut();
}

tcp::endpoint Relay::endpoint() const { return acc_.local_endpoint(); }

void Relay::cut(std::chrono::milliseconds refuse) {
  for (auto& p : pairs_) p->shut();
  pairs_.clear();
  refuse_until_ = std::chrono::steady_clock::now() + refuse;
}

void Relay::accept() {
  acc_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
    if (ec) return;
    if (std::chrono::steady_clock::now() < refuse_until_) {
      s.set_option(asio::socket_base::linger(true, 0), ec);
      s.close(ec);
      return accept();
    }
    ++accepted_;
    auto p = std::make_shared<Pair>(io_, std::move(s), *this);
    pairs_.push_back(p);
    p->b.async_connect(target_, [p](boost::system::error_code ec2) {
      if (ec2) return p->shut();
      p->pump(p->a, p->b, p->ab);
      p->pump(p->b, p->a, p->ba);
    });
    accept();
  });
}

// ---------------------------------------------------------------- configs

tunnel::NodeConfig test_node(const MemTun& tun, const char* role) {
  tunnel::NodeConfig n;
  n.role = role;
  n.tun_fd = tun.node_fd();
  n.mptcp = false;
  n.path_manager = false;
  n.tuning = {true, 128 * 1024, {}, 0};
  n.link.heartbeat = 100ms;
  n.link.dead_interval = 400ms;
  n.link.hold = 3000ms;
  n.link.stall_after = 200ms;
  n.stats_interval = 1000ms;
  return n;
}

tunnel::GatewayConfig test_gateway(const MemTun& tun) {
  tunnel::GatewayConfig g;
  g.node = test_node(tun, "server");
  g.listen = {tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  g.id = "gw-test";
  g.handshake_timeout = 1000ms;
  auto keys = std::make_shared<tunnel::hs::KeyTable>();
  keys->any.emplace(tunnel::keys::Binding{tunnel::hs::parse_key(kKeyHex), {}, false, {}, false});
  keys->decoy = tunnel::hs::parse_key(kDecoyHex);
  g.keys = keys;
  g.allow_unbound_prefixes = true;
  return g;
}

tunnel::ClientConfig test_client(const MemTun& tun, tcp::endpoint server, std::string id, const char* prefix) {
  tunnel::ClientConfig c;
  c.node = test_node(tun, "client");
  c.servers = {server};
  c.id = std::move(id);
  c.prefixes = {tunnel::parse_prefix(prefix)};
  c.key = tunnel::hs::parse_key(kKeyHex);
  c.connect_timeout = 1000ms;
  c.reconnect_max = 200ms;
  return c;
}

// ---------------------------------------------------------------- logs

struct LogCapture::Impl {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
};

LogCapture::LogCapture() : impl_(std::make_unique<Impl>()) {
  impl_->sink->set_pattern("%l %v");
  spdlog::default_logger()->sinks().push_back(impl_->sink);
}

LogCapture::~LogCapture() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), impl_->sink), sinks.end());
}

std::size_t LogCapture::count(std::string_view needle) const {
  std::istringstream in(impl_->out.str());
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

std::string LogCapture::text() const { return impl_->out.str(); }

void LogCapture::clear() { impl_->out.str({}); }

// ---------------------------------------------------------------- loop

bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.run_for(5ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(io, [] { return false; }, d);
}

Peers::Peers(const std::function<void(tunnel::GatewayConfig&)>& gcfg,
             const std::function<void(tunnel::ClientConfig&)>& ccfg) {
  auto g = test_gateway(gtun);
  if (gcfg) gcfg(g);
  gw = std::make_unique<tunnel::Gateway>(io, std::move(g));
  gw->start();
  relay = std::make_unique<Relay>(io, gw->local_endpoint());
  auto c = test_client(ctun, relay->endpoint(), "cpe-1", "10.1.0.0/16");
  if (ccfg) ccfg(c);
  cpe = std::make_unique<tunnel::Client>(io, std::move(c));
  cpe->start();
}

Peers::~Peers() {
  if (cpe) cpe->stop();
  gw->stop();
  run_for(io, std::chrono::milliseconds(50));
}

bool Peers::connected() {
  return cpe->session().connected() && gw->find("cpe-1") && gw->find("cpe-1")->connected();
}

void send_both(Peers& p, std::uint64_t from, std::uint64_t n) {
  for (std::uint64_t i = from; i < from + n; ++i) {
    p.ctun.inject(udp4(kCpeAddr, kInetAddr, i, 40 + i % 1200));
    p.gtun.inject(udp4(kInetAddr, kCpeAddr, i, 40 + (i * 7) % 1200));
  }
}

void expect_exactly(const std::vector<Bytes>& got, std::uint64_t n, const char* dir) {
  ASSERT_EQ(got.size(), n) << dir;
  for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(seq_of(got[i]), i + 1) << dir << " #" << i;
}

}  // namespace inproc
