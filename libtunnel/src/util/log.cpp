#include <tunnel/log.hpp>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>

namespace tunnel {
namespace {
std::atomic<bool> g_async{false};
}  // namespace

bool init_logging(const std::string& level) {
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return false;
  // The writer thread takes no signals: they stay with the event loop.
  spdlog::init_thread_pool(kLogQueueLines, 1, [] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
  });
  // overrun_oldest: a full queue drops its oldest line instead of blocking.
  auto logger = spdlog::create_async_nb<spdlog::sinks::stderr_color_sink_mt>("tunneld");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(lvl);
  // No flush_on: stderr is unbuffered, and a flush would take a queue slot
  // of its own per line.
  g_async = true;
  return true;
}

void shutdown_logging() {
  if (!g_async.exchange(false)) return;
  spdlog::shutdown();  // drains the queue, joins the writer thread
  // Whatever still logs (destructors at exit) writes synchronously.
  spdlog::set_default_logger(spdlog::stderr_color_mt("tunneld"));
}

std::uint64_t log_lines_dropped() {
  if (!g_async) return 0;
  const auto pool = spdlog::thread_pool();
  return pool ? pool->overrun_counter() : 0;
}

}  // namespace tunnel
