// The handler runner with real /bin/sh scripts (no root): exit codes,
// stdout, truncation, timeout kill, signal death, a missing program, the
// concurrency cap, cancellation, and that the event loop keeps running.
#include <tunnel/handler_runner.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {
using namespace tunnel::control;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using Bytes = std::vector<std::uint8_t>;
using SteadyClock = std::chrono::steady_clock;

Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }
std::string text_of(const Bytes& b) { return {b.begin(), b.end()}; }

class ControlHandlerRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tunneld-runner-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A /bin/sh script with `body` as its text, executable.
  std::string script(const std::string& name, const std::string& body, mode_t mode = 0755) {
    const auto p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), mode);
    return p.string();
  }

  RunnerConfig config(const std::string& program) {
    RunnerConfig c;
    c.program = program;
    return c;
  }

  // Runs the loop until `done` holds or `limit` passes.
  template <class F>
  void run_until(F done, std::chrono::milliseconds limit = 10s) {
    const auto end = SteadyClock::now() + limit;
    while (!done() && SteadyClock::now() < end) {
      io_.restart();
      io_.run_for(10ms);
    }
  }

  // Runs one job to its end and returns the outcome.
  HandlerOutcome run_one(const RunnerConfig& cfg, HandlerJob job) {
    HandlerRunner r(io_, cfg);
    std::optional<HandlerOutcome> out;
    r.run(std::move(job), [&](HandlerOutcome o) { out = std::move(o); });
    EXPECT_FALSE(out.has_value());  // never from inside run()
    run_until([&] { return out.has_value(); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(HandlerOutcome{});
  }

  asio::io_context io_;
  std::filesystem::path dir_;
};

TEST_F(ControlHandlerRunner, ExitCodeStdoutArgumentAndEnvironment) {
  const auto prog = script("h", R"(printf '%s|%s|%s|' "$1" "$TUNNELD_MSG_ID" "$TUNNELD_PEER_ID"; cat; exit 3)");
  const auto o = run_one(config(prog), HandlerJob{0xabc, "cpe-7", "set.conf", bytes_of("the body")});
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_FALSE(o.truncated);
  EXPECT_EQ(text_of(o.output), "set.conf|0000000000000abc|cpe-7|the body");
}

TEST_F(ControlHandlerRunner, LargeBodyInAndOutWithoutDeadlock) {
  Bytes body(kMaxControlBody);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(i * 7);
  const auto o = run_one(config(script("h", "exec cat")), HandlerJob{1, "p", "t", body});
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_FALSE(o.truncated);
  EXPECT_EQ(o.output, body);
}

TEST_F(ControlHandlerRunner, ProgramWithoutSlashIsSearchedInPath) {
  const auto o = run_one(config("echo"), HandlerJob{1, "p", "from-path", {}});
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(text_of(o.output), "from-path\n");
}

TEST_F(ControlHandlerRunner, HandlerThatIgnoresStdin) {
  const auto prog = script("h", "echo ok");
  const auto o = run_one(config(prog), HandlerJob{1, "p", "t", Bytes(kMaxControlBody, 'x')});
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(text_of(o.output), "ok\n");
}

TEST_F(ControlHandlerRunner, OutputBeyondTheLimitIsCut) {
  const auto prog = script("h", "head -c 200000 /dev/zero; exit 0");
  const auto o = run_one(config(prog), HandlerJob{1, "p", "t", {}});
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_TRUE(o.truncated);
  EXPECT_EQ(o.output.size(), kMaxControlBody);
}

TEST_F(ControlHandlerRunner, TimeoutKillsTheProcessGroup) {
  // The background sleep holds stdout open too; the group kill ends it.
  const auto prog = script("h", "echo started; sleep 30 & sleep 30");
  RunnerConfig cfg = config(prog);
  cfg.timeout = 300ms;
  const auto t0 = SteadyClock::now();
  const auto o = run_one(cfg, HandlerJob{1, "p", "t", {}});
  EXPECT_LT(SteadyClock::now() - t0, 5s);
  EXPECT_EQ(o.status, Status::timeout);
  EXPECT_EQ(o.exit_code, kNoExit);
  EXPECT_EQ(text_of(o.output), "started\n");
}

TEST_F(ControlHandlerRunner, DeathBySignalIsFailed128PlusSignal) {
  const auto prog = script("h", "echo partial; kill -TERM $$; sleep 5");
  const auto o = run_one(config(prog), HandlerJob{1, "p", "t", {}});
  EXPECT_EQ(o.status, Status::failed);
  EXPECT_EQ(o.exit_code, 128 + 15);
  EXPECT_EQ(text_of(o.output), "partial\n");
}

TEST_F(ControlHandlerRunner, ProgramThatCannotStartIsFailed127) {
  auto o = run_one(config((dir_ / "missing").string()), HandlerJob{1, "p", "t", bytes_of("x")});
  EXPECT_EQ(o.status, Status::failed);
  EXPECT_EQ(o.exit_code, 127);
  o = run_one(config(script("noexec", "echo hi", 0644)), HandlerJob{1, "p", "t", {}});
  EXPECT_EQ(o.status, Status::failed);
  EXPECT_EQ(o.exit_code, 127);
}

TEST_F(ControlHandlerRunner, ABackgroundChildDoesNotHoldTheResult) {
  const auto prog = script("h", "(sleep 3 &); echo hi");
  const auto t0 = SteadyClock::now();
  const auto o = run_one(config(prog), HandlerJob{1, "p", "t", {}});
  EXPECT_LT(SteadyClock::now() - t0, 2500ms);
  EXPECT_EQ(o.status, Status::done);
  EXPECT_EQ(text_of(o.output), "hi\n");
}

TEST_F(ControlHandlerRunner, AtMostMaxHandlersRunAndTheRestWaitInOrder) {
  const auto prog = script("h", "sleep 0.3; echo $1");
  RunnerConfig cfg = config(prog);
  cfg.max_handlers = 2;
  HandlerRunner r(io_, cfg);
  std::vector<std::string> order;
  std::size_t peak = 0;
  for (int i = 0; i < 5; ++i)
    r.run(HandlerJob{static_cast<std::uint64_t>(i + 1), "p", "t" + std::to_string(i), {}}, [&](HandlerOutcome o) {
      EXPECT_EQ(o.status, Status::done);
      order.push_back(text_of(o.output));
    });
  EXPECT_EQ(r.running(), 2u);
  EXPECT_EQ(r.waiting(), 3u);
  asio::steady_timer sample(io_);
  std::function<void()> arm = [&] {
    sample.expires_after(5ms);
    sample.async_wait([&](auto ec) {
      if (ec) return;
      peak = std::max(peak, r.running());
      arm();
    });
  };
  arm();
  const auto t0 = SteadyClock::now();
  run_until([&] { return order.size() == 5; });
  sample.cancel();
  EXPECT_EQ(order.size(), 5u);
  EXPECT_LE(peak, 2u);
  EXPECT_GE(SteadyClock::now() - t0, 850ms);  // three rounds of 0.3 s
  // Started in FIFO order: the last job cannot finish before the first two.
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.back(), "t4\n");
  EXPECT_EQ(r.counters().started, 5u);
}

TEST_F(ControlHandlerRunner, TheLoopIsNotBlockedWhileAHandlerSleeps) {
  const auto prog = script("h", "sleep 1; echo done");
  HandlerRunner r(io_, config(prog));
  bool finished = false;
  r.run(HandlerJob{1, "p", "t", Bytes(kMaxControlBody, 'b')}, [&](HandlerOutcome) { finished = true; });
  asio::steady_timer tick(io_);
  auto last = SteadyClock::now();
  SteadyClock::duration worst{};
  int ticks = 0;
  std::function<void()> arm = [&] {
    tick.expires_after(10ms);
    tick.async_wait([&](auto ec) {
      if (ec) return;
      const auto now = SteadyClock::now();
      worst = std::max(worst, now - last);
      last = now;
      ++ticks;
      arm();
    });
  };
  arm();
  run_until([&] { return finished; });
  tick.cancel();
  EXPECT_TRUE(finished);
  EXPECT_GE(ticks, 40);
  EXPECT_LT(worst, 250ms);
}

TEST_F(ControlHandlerRunner, CancelStopsRunningAndWaitingJobsWithoutDone) {
  const auto prog = script("h", "sleep 30");
  RunnerConfig cfg = config(prog);
  cfg.max_handlers = 1;
  HandlerRunner r(io_, cfg);
  int called = 0;
  const auto a = r.run(HandlerJob{1, "p", "t", {}}, [&](HandlerOutcome) { ++called; });
  const auto b = r.run(HandlerJob{2, "p", "t", {}}, [&](HandlerOutcome) { ++called; });
  EXPECT_TRUE(r.cancel(b));
  EXPECT_EQ(r.waiting(), 0u);
  EXPECT_TRUE(r.cancel(a));
  EXPECT_FALSE(r.cancel(a));
  const auto t0 = SteadyClock::now();
  run_until([&] { return r.running() == 0; });
  EXPECT_EQ(r.running(), 0u);
  EXPECT_LT(SteadyClock::now() - t0, 5s);
  io_.restart();
  io_.run_for(50ms);
  EXPECT_EQ(called, 0);
  EXPECT_EQ(r.counters().cancelled, 2u);
}

TEST_F(ControlHandlerRunner, DestroyingTheRunnerKillsItsHandlers) {
  const auto prog = script("h", "sleep 30");
  const auto t0 = SteadyClock::now();
  {
    HandlerRunner r(io_, config(prog));
    r.run(HandlerJob{1, "p", "t", {}}, [](HandlerOutcome) { ADD_FAILURE() << "done after destruction"; });
    io_.restart();
    io_.run_for(50ms);
  }
  io_.restart();
  io_.run_for(50ms);  // handlers still queued for the dead runner are harmless
  EXPECT_LT(SteadyClock::now() - t0, 5s);
}

}  // namespace
