// A handler's life: start() spawns it and arms three waits on the loop:
//   1. stdin:  the body is written to the socket, which is then shut down;
//   2. stdout: read in chunks until EOF, kept up to max_output;
//   3. pidfd:  readable when the process exits; it is reaped then.
// The timer kills the process group when the timeout passes. When the
// process has exited, whatever is left in the stdout pipe is drained without
// waiting for EOF (a background grandchild may hold it open), and finished()
// reports the outcome and starts the next waiting job.
#include <tunnel/handler_runner.hpp>
#include <tunnel/message_store.hpp>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tunnel::control {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Spawns PROGRAM TOPIC with `in_fd` as stdin and `out_fd` as stdout.
// Returns 0 and sets `pid`, or an errno value.
int spawn(const RunnerConfig& cfg, const HandlerJob& job, int in_fd, int out_fd, pid_t& pid) {
  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view kv(*e);
    if (kv.starts_with("TUNNELD_MSG_ID=") || kv.starts_with("TUNNELD_PEER_ID=")) continue;
    env_store.emplace_back(kv);
  }
  env_store.push_back("TUNNELD_MSG_ID=" + format_msg_id(job.msg_id));
  env_store.push_back("TUNNELD_PEER_ID=" + job.peer_id);
  std::vector<char*> envp;
  for (std::string& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string program = cfg.program, topic = job.topic;
  char* argv[] = {program.data(), topic.data(), nullptr};

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  const int err = posix_spawnp(&pid, program.c_str(), &fa, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return err;
}

}  // namespace

// One running handler. Its wait handlers hold a shared_ptr to it, so it
// outlives the runner's map entry until they have all run.
struct HandlerRunner::Child : std::enable_shared_from_this<Child> {
  explicit Child(asio::io_context& io) : in(io), out(io), pidfd(io), timer(io) {}

  HandlerRunner* owner = nullptr;  // null once the runner is gone
  Ticket ticket = 0;
  Done done;
  HandlerJob job;
  pid_t pid = -1;
  asio::local::stream_protocol::socket in;
  asio::posix::stream_descriptor out;
  asio::posix::stream_descriptor pidfd;
  asio::steady_timer timer;
  std::array<std::uint8_t, 16384> buf{};
  HandlerOutcome outcome;
  int wait_status = 0;
  bool reaped_ok = false;
  bool exited = false, out_done = false, reading = false;
  bool timed_out = false, cancelled = false, finished = false;

  std::size_t limit() const { return owner ? owner->cfg_.max_output : 0; }

  void kill_group() {
    if (pid > 0 && !exited) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }

  void keep(std::size_t n) {
    const std::size_t lim = limit();
    const std::size_t room = lim - std::min(lim, outcome.output.size());
    const std::size_t k = std::min(n, room);
    outcome.output.insert(outcome.output.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k));
    if (n > room) outcome.truncated = true;
  }

  void close_all() {
    error_code ig;
    timer.cancel();
    in.close(ig);
    out.close(ig);
    pidfd.close(ig);
  }

  // Reads what the pipe holds now, without waiting (the process is gone).
  void drain() {
    error_code ec;
    out.non_blocking(true, ec);
    while (!ec) {
      const std::size_t n = out.read_some(asio::buffer(buf), ec);
      if (n > 0) keep(n);
    }
    out_done = true;
  }

  void write_in() {
    auto self = shared_from_this();
    if (job.body.empty()) {
      error_code ig;
      in.close(ig);
      return;
    }
    asio::async_write(in, asio::buffer(job.body), [self](const error_code&, std::size_t) {
      error_code ig;
      self->in.shutdown(asio::socket_base::shutdown_send, ig);
      self->in.close(ig);
    });
  }

  void read_out() {
    reading = true;
    out.async_read_some(asio::buffer(buf), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->reading = false;
      if (!self->owner || self->finished) return;
      if (n > 0) self->keep(n);
      if (ec && ec != asio::error::operation_aborted) self->out_done = true;  // EOF or a broken pipe
      if (self->exited && !self->out_done) self->drain();
      if (self->out_done) return self->try_finish();
      self->read_out();
    });
  }

  void wait_exit() {
    pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](const error_code& ec) {
      if (!self->owner || self->finished || ec == asio::error::operation_aborted) return;
      int st = 0;
      const pid_t r = ::waitpid(self->pid, &st, WNOHANG);
      if (r == 0) return self->wait_exit();  // not yet: wait again
      self->exited = true;
      self->reaped_ok = r == self->pid;
      self->wait_status = st;
      if (self->reading) {
        error_code ig;
        self->out.cancel(ig);  // the read's handler drains the pipe and finishes
        return;
      }
      if (!self->out_done) self->drain();
      self->try_finish();
    });
  }

  void arm_timer(std::chrono::milliseconds timeout) {
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || !self->owner || self->finished || self->exited) return;
      self->timed_out = true;
      self->kill_group();
    });
  }

  void try_finish() {
    if (!exited || !out_done || finished) return;
    finished = true;
    close_all();
    HandlerOutcome& o = outcome;
    if (timed_out) {
      o.status = Status::timeout;
      o.exit_code = kNoExit;
    } else if (!reaped_ok) {
      o.status = Status::failed;
      o.exit_code = kNoExit;
    } else if (WIFEXITED(wait_status)) {
      o.status = Status::done;
      o.exit_code = static_cast<std::int16_t>(WEXITSTATUS(wait_status));
    } else {
      o.status = Status::failed;
      o.exit_code = static_cast<std::int16_t>(128 + WTERMSIG(wait_status));
    }
    if (owner) owner->finished(*this);
  }
};

HandlerRunner::HandlerRunner(asio::io_context& io, RunnerConfig cfg) : io_(io), cfg_(std::move(cfg)) {
  if (cfg_.max_handlers == 0) cfg_.max_handlers = 1;
}

HandlerRunner::~HandlerRunner() {
  for (auto& [t, c] : running_) {
    if (c->pid > 0 && !c->exited) {
      c->kill_group();
      int st;
      while (::waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    c->owner = nullptr;
    c->close_all();
  }
}

HandlerRunner::Ticket HandlerRunner::run(HandlerJob job, Done done) {
  const Ticket t = next_ticket_++;
  if (running_.size() < cfg_.max_handlers && waiting_.empty()) start(t, std::move(job), std::move(done));
  else waiting_.push_back(Waiting{t, std::move(job), std::move(done)});
  return t;
}

bool HandlerRunner::cancel(Ticket t) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->ticket == t) {
      waiting_.erase(it);
      ++c_.cancelled;
      return true;
    }
  }
  const auto it = running_.find(t);
  if (it == running_.end() || it->second->cancelled) return false;
  it->second->cancelled = true;
  it->second->kill_group();
  ++c_.cancelled;
  return true;
}

void HandlerRunner::pump() {
  while (running_.size() < cfg_.max_handlers && !waiting_.empty()) {
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    start(w.ticket, std::move(w.job), std::move(w.done));
  }
}

void HandlerRunner::start(Ticket t, HandlerJob job, Done done) {
  auto c = std::make_shared<Child>(io_);
  c->owner = this;
  c->ticket = t;
  c->done = std::move(done);
  c->job = std::move(job);
  running_.emplace(t, c);

  int out_pipe[2] = {-1, -1};
  int in_pair[2] = {-1, -1};
  int err = 0;
  if (::pipe2(out_pipe, O_CLOEXEC) < 0 || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) < 0)
    err = errno;
  if (err == 0) err = spawn(cfg_, c->job, in_pair[1], out_pipe[1], c->pid);
  int pidfd = -1;
  if (err == 0) {
    ++c_.started;
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c->pid, 0));
    if (pidfd < 0) {  // cannot watch it: do not leave it running unwatched
      err = errno;
      c->kill_group();
      int st;
      while (::waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int fd : {out_pipe[1], in_pair[1]})
    if (fd >= 0) ::close(fd);
  if (err != 0) {
    for (int fd : {out_pipe[0], in_pair[0]})
      if (fd >= 0) ::close(fd);
    ++c_.spawn_failed;
    c->exited = c->out_done = c->finished = true;
    c->outcome.status = Status::failed;
    c->outcome.exit_code = 127;
    // Reported from the loop, never from inside run().
    asio::post(io_, [c] {
      if (c->owner) c->owner->finished(*c);
    });
    return;
  }
  c->in.assign(asio::local::stream_protocol(), in_pair[0]);
  c->out.assign(out_pipe[0]);
  c->pidfd.assign(pidfd);
  c->write_in();
  c->read_out();
  c->wait_exit();
  c->arm_timer(cfg_.timeout);
}

void HandlerRunner::finished(Child& c) {
  const auto it = running_.find(c.ticket);
  if (it == running_.end()) return;
  const std::shared_ptr<Child> keep = it->second;  // `c` stays valid through the callback
  running_.erase(it);
  if (c.outcome.status == Status::timeout) ++c_.timed_out;
  if (c.outcome.truncated) ++c_.truncated;
  pump();  // older waiting jobs take the free slot before Done can add one
  if (!c.cancelled && c.done) {
    Done done = std::move(c.done);
    done(std::move(c.outcome));
  }
}

}  // namespace tunnel::control
