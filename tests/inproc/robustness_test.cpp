// A gateway no one can lock out or stop: a flood of idle connections from
// one address does not keep a CPE out (the oldest pending handshake of a
// source is dropped, never the newcomer); a TUN that vanishes ends the
// node cleanly, once, instead of spinning; a malformed control frame, either
// way, ends that connection only (logged once, counted) and the session
// resumes with nothing lost.
#include "harness.hpp"

#include <tunnel/wire.hpp>

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

// ---------------------------------------------------------------- bad control frames

namespace wire = tunnel::wire;

void put64(Bytes& b, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Bytes control_frame(wire::FrameType type, Bytes body) {
  Bytes f(wire::kHeaderSize);
  wire::encode_header(f.data(), type, 0, static_cast<std::uint32_t>(body.size()));
  f.insert(f.end(), body.begin(), body.end());
  return f;
}

// MESSAGE msg_id 1, item 1, for `topic` (which may be invalid).
Bytes message_frame(std::string_view topic) {
  Bytes b;
  put64(b, 1);
  put64(b, 1);
  b.push_back(static_cast<std::uint8_t>(topic.size()));
  b.insert(b.end(), topic.begin(), topic.end());
  b.push_back('x');
  return control_frame(wire::FrameType::message, std::move(b));
}

Bytes receipt_frame(std::uint64_t seq) {
  Bytes b;
  put64(b, seq);
  return control_frame(wire::FrameType::receipt, std::move(b));
}

std::uint64_t bad_control(const tunnel::Session& s) {
  return s.counters().proto_errors[static_cast<std::size_t>(wire::ParseStatus::bad_control)];
}

// The CPE (or the gateway) sends `frame` on its connected bulk link, in the
// middle of a stream both ways. The receiver must end that connection as a
// protocol error: one log line naming `cause`, counted in the status map
// (protocol_errors.bad_control) and by its control channel; the session
// resumes (same id) with every packet delivered once, in order, and the
// control channel still answers.
void bad_control_frame(const Bytes& frame, bool from_cpe, const std::string& cause) {
  Peers p;
  ASSERT_TRUE(run_until(p.io, [&] { return p.connected(); }, 3000ms));
  const std::uint64_t sid = p.gs().id();
  std::vector<Bytes> up, down;
  send_both(p, 1, 200);
  ASSERT_TRUE(run_until(p.io, [&] { p.gtun.drain(up); p.ctun.drain(down); return up.size() >= 200 && down.size() >= 200; }, 3000ms));
  LogCapture log;
  tunnel::Link& sender = from_cpe ? p.cpe->session().link(0) : *p.gs().find_link(0);
  ASSERT_TRUE(sender.core().queue_frame(frame));
  sender.flush();
  send_both(p, 201, 200);  // while the connection ends and resumes
  const tunnel::Session& receiver = from_cpe ? p.gs() : p.cpe->session();
  ASSERT_TRUE(run_until(p.io, [&] { return bad_control(receiver) >= 1; }, 3000ms)) << log.text();
  ASSERT_TRUE(run_until(p.io, [&] {
    p.gtun.drain(up);
    p.ctun.drain(down);
    return p.connected() && up.size() >= 400 && down.size() >= 400;
  }, 8000ms)) << up.size() << " up, " << down.size() << " down";
  run_for(p.io, 200ms);
  p.gtun.drain(up);
  p.ctun.drain(down);
  expect_exactly(up, 400, "up");
  expect_exactly(down, 400, "down");
  EXPECT_EQ(bad_control(receiver), 1u);
  tunnel::Node& rx_node = from_cpe ? static_cast<tunnel::Node&>(*p.gw) : *p.cpe;
  const auto* cc = rx_node.control()->counters(receiver);
  ASSERT_TRUE(cc);
  EXPECT_EQ(cc->protocol_errors, 1u);
  EXPECT_GE(p.cpe->session().counters().resumes, 1u);
  EXPECT_EQ(p.gs().id(), sid);
  EXPECT_EQ(p.cpe->session().id(), sid);
  EXPECT_EQ(p.gw->counters().sessions_created, 1u);
  EXPECT_EQ(log.count("malformed control frame"), 1u) << log.text();
  EXPECT_EQ(log.count("malformed control frame: " + cause), 1u) << log.text();
  EXPECT_EQ(log.count("unexpected frame"), 0u) << log.text();
  // The control channel survived: a ping is answered.
  std::string err;
  const tunnel::control::ControlHub::Target t{const_cast<tunnel::Session*>(&p.gs()), "cpe-1"};
  const auto id = p.gw->control()->send({&t, 1}, {}, "tunneld.ping", {}, std::chrono::steady_clock::now(), err);
  ASSERT_NE(id, 0u) << err;
  ASSERT_TRUE(run_until(p.io, [&] {
    const auto* m = p.gw->control()->store().find(id);
    return m && m->complete();
  }, 3000ms));
  const auto& r = p.gw->control()->store().find(id)->targets.at(0);
  EXPECT_EQ(r.status, tunnel::control::TargetStatus::done);
  EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "pong");
}

TEST(Robustness, AMessageWithABadTopicEndsTheConnectionAndTheSessionResumes) {
  bad_control_frame(message_frame("bad topic"), true, "MESSAGE: bad_topic");
}

TEST(Robustness, AReceiptAheadOfWhatWasSentEndsTheConnectionAndTheSessionResumes) {
  bad_control_frame(receipt_frame(1000), false, "RECEIPT: receipt_ahead");
}

}  // namespace
}  // namespace inproc
