#include <tunnel/path_monitor.hpp>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

namespace tunnel {
namespace {

constexpr std::size_t kBufSize = 32768;  // MNL_SOCKET_DUMP_SIZE
constexpr int kRcvBuf = 1 << 20;          // room for a burst (a redial, a modem reset)
constexpr int kDumpAttempts = 5;          // a dump interrupted by a change is retried

struct Sink {
  PathTracker* tracker;
  std::vector<PathDecision>* out;
  bool interrupted = false;
};

int msg_cb(const nlmsghdr* nlh, void* data) {
  auto* s = static_cast<Sink*>(data);
  if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) s->interrupted = true;
  if (auto l = netlink::parse_link(nlh)) s->tracker->on_link(*l, *s->out);
  else if (auto a = netlink::parse_addr(nlh)) s->tracker->on_addr(*a, *s->out);
  return MNL_CB_OK;
}

// Runs one dump request on its own blocking socket; false with errno set on
// failure or interruption.
bool run_dump(nlmsghdr* req, Sink& sink) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl) return false;
  bool ok = mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 && mnl_socket_sendto(nl, req, req->nlmsg_len) >= 0;
  const unsigned portid = mnl_socket_get_portid(nl);
  alignas(nlmsghdr) char buf[kBufSize];
  while (ok) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n < 0) { ok = false; break; }
    const int r = mnl_cb_run(buf, static_cast<std::size_t>(n), req->nlmsg_seq, portid, msg_cb, &sink);
    if (r == MNL_CB_STOP) break;
    if (r < 0) ok = false;
  }
  const int err = errno;
  mnl_socket_close(nl);
  errno = err;
  if (ok && sink.interrupted) { errno = EINTR; return false; }
  return ok;
}

}  // namespace

const char* to_string(MonitorResult r) {
  switch (r) {
    case MonitorResult::ok: return "ok";
    case MonitorResult::resynced: return "resynced";
    case MonitorResult::failed: return "failed";
  }
  return "?";
}

PathMonitor::PathMonitor(std::vector<std::string> paths, FamilyPolicy policy)
    : tracker_(std::move(paths), policy) {
  events_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!events_) throw std::system_error(errno, std::generic_category(), "rtnetlink: open event socket");
  const unsigned groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (mnl_socket_bind(events_, groups, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(events_);
    throw std::system_error(err, std::generic_category(), "rtnetlink: subscribe to link and address events");
  }
  const int fd = mnl_socket_get_fd(events_);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kRcvBuf, sizeof kRcvBuf) < 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof kRcvBuf);  // no CAP_NET_ADMIN: capped
}

PathMonitor::~PathMonitor() {
  if (events_) mnl_socket_close(events_);
}

int PathMonitor::fd() const { return mnl_socket_get_fd(events_); }

bool PathMonitor::dump(std::vector<PathDecision>& out) {
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    tracker_.begin_snapshot();
    std::vector<PathDecision> none;  // the snapshot emits nothing until end_snapshot()
    Sink sink{&tracker_, &none};
    alignas(nlmsghdr) char req[64];
    if (run_dump(netlink::build_link_dump(req, ++seq_), sink) &&
        run_dump(netlink::build_addr_dump(req, ++seq_), sink)) {
      tracker_.end_snapshot(out);
      return true;
    }
    errno_ = errno;
    if (errno_ != EINTR) break;
  }
  // Leave the tracker consistent with the partial snapshot rather than half in one.
  tracker_.end_snapshot(out);
  return false;
}

MonitorResult PathMonitor::start(std::vector<PathDecision>& out) {
  // Events queued before the dump are older than it; drop them unapplied.
  alignas(nlmsghdr) char buf[kBufSize];
  while (mnl_socket_recvfrom(events_, buf, sizeof buf) > 0) {
  }
  return dump(out) ? MonitorResult::ok : MonitorResult::failed;
}

MonitorResult PathMonitor::on_readable(std::vector<PathDecision>& out) {
  alignas(nlmsghdr) char buf[kBufSize];
  Sink sink{&tracker_, &out};
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(events_, buf, sizeof buf);
    if (n > 0) {
      mnl_cb_run(buf, static_cast<std::size_t>(n), 0, 0, msg_cb, &sink);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return MonitorResult::ok;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {
      // Events were lost. Empty the queue, then read the whole state again.
      while (mnl_socket_recvfrom(events_, buf, sizeof buf) > 0) {
      }
      return dump(out) ? MonitorResult::resynced : MonitorResult::failed;
    }
    errno_ = n < 0 ? errno : EPIPE;
    return MonitorResult::failed;
  }
}

}  // namespace tunnel
