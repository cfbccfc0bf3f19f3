// Logging set-up: one spdlog logger to stderr; journald adds timestamps of
// its own, so `plain` drops ours.
#pragma once

#include <string>

namespace tunnel {

// `level` is one of trace, debug, info, warn, error, off. Returns false for an
// unknown level (the caller reports it as a bad flag).
bool init_logging(const std::string& level);

}  // namespace tunnel
