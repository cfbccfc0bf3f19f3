// Service manager notifications (sd_notify(3)): readiness, watchdog pings,
// status text and shutdown. Every call is a no-op returning false when the
// daemon was not started by systemd with Type=notify (NOTIFY_SOCKET unset),
// so the daemon calls them unconditionally. Not for the data path: each call
// is one datagram to the service manager.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tunneld::notify {

// READY=1, with STATUS=`status` when it is not empty: start-up is complete
// (the TUN is up and the gateway listens, or the client has begun to
// connect). Returns true when a service manager was told.
bool ready(std::string_view status = {});

// STATUS=`text`: one line for `systemctl status` (e.g. "3 CPEs, 1 pending").
bool status(std::string_view text);

// WATCHDOG=1. Call it every watchdog_interval() from the event loop, so a
// loop that stops turning gets the service restarted.
bool watchdog();

// STOPPING=1: shutdown has begun.
bool stopping();

// How often to call watchdog(): half the unit's WatchdogSec=, or nullopt
// when the service manager expects no pings (no watchdog, or not under
// systemd).
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace tunneld::notify
