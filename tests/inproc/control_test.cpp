// Control messages between two whole endpoints in one process (issue 12):
// both directions answered, resend across a cut connection with each id run
// once and in order, a message for a disconnected CPE answered after it
// resumes, unknown ids, groups, handler timeouts, and data flowing while a
// handler sleeps; a version 3 CPE answered no-handler without the wire, and
// a session whose hold expired ending its messages session-ended. The
// handler is a small shell script.
#include "harness.hpp"

#include <tunnel/control_format.hpp>
#include <tunnel/message_store.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

namespace inproc {
namespace {
namespace asio = boost::asio;
namespace ctl = tunnel::control;
using Clock = std::chrono::steady_clock;

// A handler script in a fresh directory; $LOG is where `log` appends ids.
struct Handler {
  std::string dir, path, log;
  Handler() {
    char tmpl[] = "/tmp/tunneld-ctl-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/handler.sh";
    log = dir + "/ids";
    std::ofstream(path) << "#!/bin/sh\n"
                           "case \"$1\" in\n"
                           "  echo) cat ;;\n"
                           "  peer) echo \"$TUNNELD_PEER_ID\" ;;\n"
                           "  sleep) sleep \"$(cat)\"; echo slept ;;\n"
                           "  log) echo \"$TUNNELD_MSG_ID\" >> \"" + log + "\"; cat >/dev/null; echo ok ;;\n"
                           "  *) exit 3 ;;\n"
                           "esac\n";
    ::chmod(path.c_str(), 0755);
  }
  ~Handler() {
    ::unlink(log.c_str());
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  std::vector<std::string> ids() const {
    std::ifstream f(log);
    std::vector<std::string> v;
    for (std::string l; std::getline(f, l);) v.push_back(l);
    return v;
  }
};

tunnel::control::HubConfig hub_config(const std::string& program, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  tunnel::control::HubConfig h;
  h.runner.program = program;
  h.runner.timeout = timeout;
  return h;
}

struct Net {
  asio::io_context io;
  MemTun gtun;
  std::unique_ptr<tunnel::Gateway> gw;
  std::unique_ptr<Relay> relay;
  std::vector<std::unique_ptr<MemTun>> ctuns;
  std::vector<std::unique_ptr<tunnel::Client>> cpes;

  explicit Net(const std::string& gw_handler = {}) {
    auto g = test_gateway(gtun);
    g.node.control = hub_config(gw_handler);
    gw = std::make_unique<tunnel::Gateway>(io, std::move(g));
    gw->start();
    relay = std::make_unique<Relay>(io, gw->local_endpoint());
  }
  tunnel::Client& add_cpe(const std::string& id, const char* prefix, const std::string& handler,
                          std::vector<std::string> groups = {}, std::chrono::seconds timeout = std::chrono::seconds(30),
                          std::uint8_t max_version = tunnel::wire::kVersion) {
    ctuns.push_back(std::make_unique<MemTun>());
    auto c = test_client(*ctuns.back(), relay->endpoint(), id, prefix);
    c.node.control = hub_config(handler, timeout);
    c.groups = std::move(groups);
    c.max_version = max_version;
    cpes.push_back(std::make_unique<tunnel::Client>(io, std::move(c)));
    cpes.back()->start();
    return *cpes.back();
  }
  ~Net() {
    for (auto& c : cpes) c->stop();
    gw->stop();
    run_for(io, 50ms);
  }
  bool up(const std::string& id) {
    const auto* s = gw->find(id);
    return s && s->connected();
  }
  bool all_up() {
    for (auto& c : cpes)
      if (!c->session().connected()) return false;
    return true;
  }
  // The gateway sends to these CPE ids (resolved as `tunneld send --to` does).
  std::uint64_t to_cpes(const std::vector<std::string>& ids, const std::string& topic, const std::string& body) {
    ctl::TargetSpec spec;
    spec.ids = ids;
    return resolve_send(spec, topic, body);
  }
  std::uint64_t resolve_send(const ctl::TargetSpec& spec, const std::string& topic, const std::string& body) {
    std::vector<ctl::PeerEntry> rows;
    std::vector<tunnel::Session*> sessions;
    gw->for_each_session([&](const tunnel::Session& s) {
      sessions.push_back(const_cast<tunnel::Session*>(&s));
      rows.push_back({s.peer_id, s.groups});
    });
    const auto r = ctl::resolve_targets(spec, rows);
    std::vector<ctl::ControlHub::Target> t;
    for (const auto& name : r.peers)
      for (auto* s : sessions)
        if (s->peer_id == name) t.push_back({s, name});
    std::string err;
    const auto id = gw->control()->send(t, r.unknown, topic, bytes(body), Clock::now(), err);
    EXPECT_NE(id, 0u) << err;
    return id;
  }
  static std::span<const std::uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
  }
  const ctl::SentMessage* wait(tunnel::Node& n, std::uint64_t id, std::chrono::milliseconds limit = 5000ms) {
    run_until(io, [&] {
      const auto* m = n.control()->store().find(id);
      return m && m->complete();
    }, limit);
    return n.control()->store().find(id);
  }
};

std::string body_of(const ctl::TargetResult& t) { return {t.body.begin(), t.body.end()}; }

TEST(Control, GatewayToCpeAnswered) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  const auto id = n.to_cpes({"cpe-1"}, "echo", "hello\nworld");
  const auto* m = n.wait(*n.gw, id);
  ASSERT_TRUE(m && m->complete());
  ASSERT_EQ(m->targets.size(), 1u);
  EXPECT_EQ(m->targets[0].peer, "cpe-1");
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(m->targets[0].exit_code, 0);
  EXPECT_EQ(body_of(m->targets[0]), "hello\nworld");
  // The handler hears who sent it; an unknown topic exits 3; built-ins answer at once.
  const auto* p = n.wait(*n.gw, n.to_cpes({"cpe-1"}, "peer", ""));
  EXPECT_EQ(body_of(p->targets[0]), "gw-test\n");
  const auto* x = n.wait(*n.gw, n.to_cpes({"cpe-1"}, "nope", ""));
  EXPECT_EQ(x->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(x->targets[0].exit_code, 3);
  const auto* ping = n.wait(*n.gw, n.to_cpes({"cpe-1"}, "tunneld.ping", ""));
  EXPECT_EQ(body_of(ping->targets[0]), "pong");
  const auto* c = n.gw->control()->counters(*n.gw->find("cpe-1"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sent, 4u);
  EXPECT_EQ(c->answered, 4u);
}

TEST(Control, CpeToGatewayAnswered) {
  Handler h;
  Net n(h.path);
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", "");
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  std::string err;
  ctl::ControlHub::Target t{&cpe.session(), cpe.peer_name(cpe.session())};
  EXPECT_EQ(t.name, "gw-test");
  const auto id = cpe.control()->send({&t, 1}, {}, "peer", {}, Clock::now(), err);
  const auto* m = n.wait(cpe, id);
  ASSERT_TRUE(m && m->complete());
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(body_of(m->targets[0]), "cpe-1\n");
  // The CPE has no handler: the gateway's message is refused, not run.
  const auto* r = n.wait(*n.gw, n.to_cpes({"cpe-1"}, "echo", "x"));
  EXPECT_EQ(r->targets[0].status, ctl::TargetStatus::no_handler);
}

TEST(Control, CutMidStreamResendsEachIdOnceInOrder) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  // 20 go through; 20 are handed to a stalled relay and lost with its
  // connections; 20 wait for the reconnect.
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 60; ++i) {
    if (i == 20) {
      run_for(n.io, 30ms);
      n.relay->stall(true);
    }
    if (i == 40) {
      run_for(n.io, 30ms);
      n.relay->cut(150ms);
      n.relay->stall(false);
    }
    ids.push_back(n.to_cpes({"cpe-1"}, "log", std::string(100 + i, 'a')));
  }
  for (auto id : ids) {
    const auto* m = n.wait(*n.gw, id, 15000ms);
    ASSERT_TRUE(m && m->complete());
    EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done) << ctl::format_msg_id(id);
    EXPECT_EQ(body_of(m->targets[0]), "ok\n");
  }
  std::vector<std::string> want;
  for (auto id : ids) want.push_back(ctl::format_msg_id(id));
  EXPECT_EQ(h.ids(), want);
  EXPECT_GE(n.relay->connections(), 2u);
  const auto* c = n.gw->control()->counters(*n.gw->find("cpe-1"));
  EXPECT_EQ(c->answered, 60u);
  EXPECT_EQ(c->sent, 60u);
  EXPECT_GE(c->resent, 20u);  // the ones the stalled relay swallowed
  const auto* cc = n.cpes[0]->control()->counters(n.cpes[0]->session());
  EXPECT_EQ(cc->received, 60u);
}

TEST(Control, DisconnectedCpeAnsweredAfterResume) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  n.relay->cut(1000ms);
  ASSERT_TRUE(run_until(n.io, [&] { return !n.up("cpe-1"); }, 2000ms));
  const auto id = n.to_cpes({"cpe-1"}, "echo", "while away");
  run_for(n.io, 300ms);
  EXPECT_FALSE(n.gw->control()->store().find(id)->complete());
  const auto* m = n.wait(*n.gw, id, 6000ms);
  ASSERT_TRUE(m && m->complete());
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(body_of(m->targets[0]), "while away");
}

TEST(Control, UnknownIdAndGroups) {
  Handler h;
  Net n;
  n.add_cpe("cpe-1", "10.1.0.0/16", h.path, {"lab", "north"});
  n.add_cpe("cpe-2", "10.2.0.0/16", h.path, {"lab"});
  n.add_cpe("cpe-3", "10.3.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && n.up("cpe-2") && n.up("cpe-3") && n.all_up(); }, 3000ms));
  EXPECT_EQ(n.gw->find("cpe-1")->groups, (std::vector<std::string>{"lab", "north"}));
  ctl::TargetSpec spec;
  spec.groups = {"lab"};
  spec.ids = {"nobody"};
  const auto* m = n.wait(*n.gw, n.resolve_send(spec, "peer", ""));
  ASSERT_TRUE(m && m->complete());
  ASSERT_EQ(m->targets.size(), 3u);
  EXPECT_EQ(m->targets[0].peer, "cpe-1");
  EXPECT_EQ(m->targets[1].peer, "cpe-2");
  EXPECT_EQ(m->targets[2].peer, "nobody");
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(m->targets[1].status, ctl::TargetStatus::done);
  EXPECT_EQ(m->targets[2].status, ctl::TargetStatus::unknown);
  EXPECT_EQ(ctl::exit_code_for(m->targets), 1);
  ctl::TargetSpec all;
  all.all = true;
  const auto* a = n.wait(*n.gw, n.resolve_send(all, "echo", "x"));
  ASSERT_EQ(a->targets.size(), 3u);
  EXPECT_EQ(ctl::exit_code_for(a->targets), 0);
}

TEST(Control, HandlerTimeoutThenNextRuns) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path, {}, std::chrono::seconds(1));
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  const auto slow = n.to_cpes({"cpe-1"}, "sleep", "5");
  const auto next = n.to_cpes({"cpe-1"}, "echo", "next");
  const auto t0 = Clock::now();
  const auto* m = n.wait(*n.gw, slow, 4000ms);
  ASSERT_TRUE(m && m->complete());
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::timeout);
  EXPECT_LT(Clock::now() - t0, 2500ms);
  const auto* x = n.wait(*n.gw, next, 2000ms);
  ASSERT_TRUE(x && x->complete());
  EXPECT_EQ(x->targets[0].status, ctl::TargetStatus::done);
  EXPECT_EQ(body_of(x->targets[0]), "next");
}

TEST(Control, SleepingHandlerDoesNotDelayData) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  const auto id = n.to_cpes({"cpe-1"}, "sleep", "6");  // longer than the loop below takes, even on a busy machine
  run_for(n.io, 100ms);  // the handler is running now
  MemTun& ctun = *n.ctuns[0];
  std::vector<Bytes> got;
  std::chrono::milliseconds worst{0};
  for (std::uint64_t i = 1; i <= 150; ++i) {  // 1.5 s of packets, 10 ms apart, both directions
    const auto sent = Clock::now();
    n.gtun.inject(udp4("192.0.2.9", "10.1.0.5", i));
    ctun.inject(udp4("10.1.0.5", "192.0.2.9", i));
    std::vector<Bytes> up;
    run_until(n.io, [&] {
      ctun.drain(got);
      n.gtun.drain(up);
      return got.size() >= i && !up.empty();
    }, 1000ms);
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent));
    run_for(n.io, 10ms);
  }
  EXPECT_EQ(got.size(), 150u);
  // A handler on the loop would hold a packet for its whole 6 s; the bound
  // leaves room for a loaded CI machine.
  EXPECT_LT(worst, 250ms);
  std::printf("worst packet delay while the handler slept: %lld ms\n", static_cast<long long>(worst.count()));
  EXPECT_FALSE(n.gw->control()->store().find(id)->complete());  // still sleeping while the data flowed
  const auto* m = n.wait(*n.gw, id, 8000ms);
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::done);
}

TEST(Control, Version3CpeAnsweredNoHandlerLocally) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path, {}, std::chrono::seconds(30), 3);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  EXPECT_EQ(cpe.version(), 3);
  const auto id = n.to_cpes({"cpe-1"}, "echo", "x");
  const auto* m = n.gw->control()->store().find(id);
  ASSERT_TRUE(m && m->complete());  // at once, nothing on the wire
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::no_handler);
  run_for(n.io, 200ms);
  EXPECT_TRUE(n.up("cpe-1"));
  const auto* c = n.gw->control()->counters(*n.gw->find("cpe-1"));
  EXPECT_EQ(c ? c->sent : 0u, 0u);
}

TEST(Control, HoldExpiredEndsSessionEnded) {
  Handler h;
  Net n;
  auto& cpe = n.add_cpe("cpe-1", "10.1.0.0/16", h.path);
  ASSERT_TRUE(run_until(n.io, [&] { return n.up("cpe-1") && cpe.session().connected(); }, 3000ms));
  n.relay->cut(6000ms);  // longer than the hold (3 s) after the dead interval
  ASSERT_TRUE(run_until(n.io, [&] { return !n.up("cpe-1"); }, 2000ms));
  const auto id = n.to_cpes({"cpe-1"}, "echo", "never");
  const auto* m = n.wait(*n.gw, id, 6000ms);
  ASSERT_TRUE(m && m->complete());
  EXPECT_EQ(m->targets[0].status, ctl::TargetStatus::session_ended);
  EXPECT_EQ(n.gw->control()->totals().ended, 1u);
}

}  // namespace
}  // namespace inproc
