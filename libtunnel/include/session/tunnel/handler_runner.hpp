// Runs the message handler program (--on-message) off the forwarding path.
//
// For each job, `PROGRAM TOPIC` is started with posix_spawnp (no fork: a
// large process must not stall while page tables are copied), in a process
// group of its own, with default signal dispositions and an empty signal
// mask, the daemon's environment plus TUNNELD_MSG_ID (16 hex digits, as the
// admin command prints it) and TUNNELD_PEER_ID, stderr inherited and every
// other descriptor closed. Its stdin is one end of a Unix stream socket
// that carries the body and is then shut down (writes never raise SIGPIPE
// in the daemon); its stdout is a pipe read up to `max_output` bytes, the
// rest read and discarded (the result is then `truncated`).
//
// Outcome (HandlerOutcome):
//   exited with code N            done, N
//   killed by signal S            failed, 128 + S
//   could not be started          failed, 127
//   outlived `timeout`            timeout, -1 (its process group got SIGKILL)
// The outcome is taken when the process exits; output a background child
// writes after that is not waited for.
//
// At most `max_handlers` run at once; further jobs wait in FIFO order.
// Everything happens on the io_context's thread through non-blocking
// descriptors and a pidfd per child (Linux 5.3+); nothing waits on the loop.
// Nothing else in the process may reap children (waitpid(-1), SIGCHLD set to
// SIG_IGN), or outcomes read failed with exit -1.
#pragma once

#include <tunnel/control_wire.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tunnel::control {

struct RunnerConfig {
  std::string program;                                // searched in PATH when it holds no '/'
  std::size_t max_handlers = 16;                      // running at once, across the daemon
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::size_t max_output = kMaxControlBody;           // stdout bytes kept
};

struct HandlerJob {
  std::uint64_t msg_id = 0;
  std::string peer_id;  // the message's sender
  std::string topic;
  std::vector<std::uint8_t> body;
};

struct HandlerOutcome {
  Status status = Status::failed;
  std::int16_t exit_code = kNoExit;
  bool truncated = false;
  std::vector<std::uint8_t> output;
};

struct RunnerCounters {
  std::uint64_t started = 0;       // processes spawned
  std::uint64_t spawn_failed = 0;  // answered failed/127
  std::uint64_t timed_out = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t truncated = 0;
};

class HandlerRunner {
 public:
  using Ticket = std::uint64_t;
  // Called once on the io_context's thread, never from inside run() or
  // cancel(), unless the job was cancelled. May call run() again.
  using Done = std::function<void(HandlerOutcome)>;

  HandlerRunner(boost::asio::io_context& io, RunnerConfig cfg);
  // Kills every running handler's process group with SIGKILL and reaps it
  // (blocking for that only); no Done is called.
  ~HandlerRunner();
  HandlerRunner(const HandlerRunner&) = delete;
  HandlerRunner& operator=(const HandlerRunner&) = delete;

  Ticket run(HandlerJob job, Done done);
  // A waiting job is dropped; a running one's process group is killed. Its
  // Done is not called. False when the ticket is unknown or finished.
  bool cancel(Ticket t);

  std::size_t running() const { return running_.size(); }
  std::size_t waiting() const { return waiting_.size(); }
  const RunnerCounters& counters() const { return c_; }
  const RunnerConfig& config() const { return cfg_; }

  struct Child;  // one running process and its descriptors (handler_runner.cpp)

 private:
  struct Waiting {
    Ticket ticket;
    HandlerJob job;
    Done done;
  };
  void start(Ticket t, HandlerJob job, Done done);
  void finished(Child& c);
  void pump();

  boost::asio::io_context& io_;
  RunnerConfig cfg_;
  Ticket next_ticket_ = 1;
  std::deque<Waiting> waiting_;
  std::map<Ticket, std::shared_ptr<Child>> running_;
  RunnerCounters c_;
};

}  // namespace tunnel::control
