// Logging set-up: one spdlog logger to stderr, one line per event, with an
// ISO-8601 timestamp and the level.
#pragma once

#include <string>

namespace tunnel {

// `level` is one of trace, debug, info, warn, error, off. Returns false for an
// unknown level (the caller reports it as a bad flag).
bool init_logging(const std::string& level);

}  // namespace tunnel
