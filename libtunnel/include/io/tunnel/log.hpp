// Logging set-up: one spdlog logger to stderr, one line per event, with an
// ISO-8601 timestamp and the level. The logger is asynchronous: a line is
// queued (kLogQueueLines at most) and written by a thread of its own, so the
// thread that logs never waits for stderr. When the queue is full the oldest
// queued line is dropped and counted (log_lines_dropped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tunnel {

inline constexpr std::size_t kLogQueueLines = 8192;

// `level` is one of trace, debug, info, warn, error, off. Returns false for an
// unknown level (the caller reports it as a bad flag). Call once, before any
// other thread logs.
bool init_logging(const std::string& level);

// Writes every queued line and stops the logging thread; call before the
// process exits. Lines logged afterwards are written synchronously. A no-op
// without init_logging.
void shutdown_logging();

// Lines dropped because the queue was full, since init_logging; 0 without it.
std::uint64_t log_lines_dropped();

}  // namespace tunnel
