// A gateway no one can lock out or stop: a flood of idle connections from
// one address does not keep a CPE out (the oldest pending handshake of a
// source is dropped, never the newcomer); a TUN that vanishes ends the
// node cleanly, once, instead of spinning.
#include "harness.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <iostream>
#include <list>
#include <memory>
#include <thread>

namespace inproc {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// `n` idle connections from `from`, each dialled again as soon as it ends.
// It runs on a thread and loop of its own, as another host would: the
// gateway's loop sees only what arrives on its sockets.
class Flood {
 public:
  Flood(tcp::endpoint target, const char* from, unsigned n)
      : target_(target), from_(asio::ip::make_address(from)), work_(asio::make_work_guard(io_)) {
    asio::post(io_, [this, n] {
      for (unsigned i = 0; i < n; ++i) dial();
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Flood() {
    asio::post(io_, [this] {
      stopped_ = true;
      for (auto& s : socks_) {
        boost::system::error_code ec;
        s->close(ec);
      }
      socks_.clear();
      work_.reset();
    });
    thread_.join();
  }
  std::uint64_t dials() const { return dials_.load(); }

 private:
  void dial() {
    if (stopped_) return;
    auto s = std::make_shared<tcp::socket>(io_);
    boost::system::error_code ec;
    s->open(tcp::v4(), ec);
    s->bind(tcp::endpoint(from_, 0), ec);
    socks_.push_back(s);
    ++dials_;
    s->async_connect(target_, [this, s](boost::system::error_code cec) {
      if (stopped_) return;
      if (cec) return redial(s);
      auto buf = std::make_shared<std::array<std::uint8_t, 512>>();
      read(s, buf);
    });
  }
  void read(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::array<std::uint8_t, 512>> buf) {
    s->async_read_some(asio::buffer(*buf), [this, s, buf](boost::system::error_code ec, std::size_t) {
      if (stopped_) return;
      if (ec) return redial(s);
      read(s, buf);  // the CHALLENGE: read and never answer
    });
  }
  void redial(const std::shared_ptr<tcp::socket>& s) {
    boost::system::error_code ec;
    s->close(ec);
    socks_.remove(s);
    dial();
  }
  asio::io_context io_;
  tcp::endpoint target_;
  asio::ip::address from_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::list<std::shared_ptr<tcp::socket>> socks_;  // the flood's thread only
  std::atomic<std::uint64_t> dials_{0};
  bool stopped_ = false;                            // the flood's thread only
  std::thread thread_;
};

void raise_nofile() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

TEST(Robustness, AFloodOfIdleConnectionsFromOneAddressDoesNotKeepACpeOut) {
  raise_nofile();
  asio::io_context io;
  MemTun gtun, ctun;
  auto g = test_gateway(gtun);
  g.handshake_timeout = 2000ms;
  tunnel::Gateway gw(io, std::move(g));
  gw.start();
  Flood flood(gw.local_endpoint(), "127.0.0.3", 500);
  run_for(io, 1000ms);  // the flood is in full swing: every pending slot it may hold is taken
  const auto t0 = std::chrono::steady_clock::now();
  tunnel::Client cpe(io, test_client(ctun, gw.local_endpoint(), "cpe-1", "10.1.0.0/16"));
  cpe.start();
  const bool in = run_until(io, [&] { return cpe.session().connected(); }, 5000ms);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "CPE handshake under a flood of 500 idle connections: " << ms.count() << " ms; " << flood.dials()
            << " flood dials, " << gw.counters().evicted_pending << " pending handshakes evicted\n";
  EXPECT_TRUE(in);
  EXPECT_GT(gw.counters().evicted_pending, 0u);
  EXPECT_LE(gw.pending(), 256u);
  cpe.stop();
  gw.stop();
  run_for(io, 50ms);
}

TEST(Robustness, AVanishedTunEndsTheNodeOnce) {
  asio::io_context io;
  MemTun gtun;
  tunnel::Gateway gw(io, test_gateway(gtun));
  int fatal = 0;
  std::string why;
  gw.on_fatal = [&](const std::string& w) { ++fatal; why = w; };
  gw.start();
  run_for(io, 50ms);
  gtun.vanish();
  ASSERT_TRUE(run_until(io, [&] { return fatal > 0; }, 2000ms));
  EXPECT_TRUE(gw.stopping());
  EXPECT_NE(why.find("end of file"), std::string::npos) << why;
  // Nothing keeps the loop busy once the node has stopped: run() returns.
  const auto t0 = std::chrono::steady_clock::now();
  io.restart();
  io.run_for(2000ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(fatal, 1);
}

}  // namespace
}  // namespace inproc
