#include "notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace tunneld::notify {
namespace {

// One line: a newline would start another assignment in the message.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

bool send(const std::string& msg) { return sd_notify(0, msg.c_str()) > 0; }

}  // namespace

bool ready(std::string_view status) {
  return send(status.empty() ? std::string("READY=1") : "READY=1\nSTATUS=" + one_line(status));
}

bool status(std::string_view text) { return send("STATUS=" + one_line(text)); }

bool watchdog() { return send("WATCHDOG=1"); }

bool stopping() { return send("STOPPING=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace tunneld::notify
