// Logging (log.hpp): a stuck stderr never holds up the thread that logs, and
// the lines the full queue drops are counted.
#include <tunnel/log.hpp>

#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>

namespace {

// Runs in a death test's child: stderr becomes a pipe nobody reads, so the
// writer thread blocks once the pipe is full; the logging thread must go on.
// Exits 0 when 100,000 lines were logged within the alarm and some were
// counted as dropped; a logger that blocks is killed by SIGALRM.
void log_into_a_stuck_pipe() {
  int p[2];
  if (::pipe(p) != 0 || ::dup2(p[1], STDERR_FILENO) < 0) std::_Exit(2);
  std::signal(SIGALRM, SIG_DFL);
  ::alarm(10);
  if (!tunnel::init_logging("info")) std::_Exit(3);
  for (int i = 0; i < 100000; ++i) spdlog::info("line {} of a log nobody reads", i);
  std::_Exit(tunnel::log_lines_dropped() > 0 ? 0 : 4);  // no shutdown: it would wait for the pipe
}

TEST(LogDeathTest, AStuckStderrNeverBlocksTheLoggerAndDropsAreCounted) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(log_into_a_stuck_pipe(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
