#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace tunnel::netlink {
namespace {

// Large enough for any request and for a dump reply batch (libmnl suggests
// 32 KiB, MNL_SOCKET_DUMP_SIZE; MNL_SOCKET_BUFFER_SIZE is not a constant).
constexpr std::size_t kNlBufSize = 32768;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

struct CbData {
  void* fn;
  bool (*call)(void* fn, const nlmsghdr*);
};

int data_cb(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<CbData*>(data);
  return d->call(d->fn, nlh) ? MNL_CB_OK : MNL_CB_ERROR;
}

}  // namespace

MptcpPm::MptcpPm() {
  nl_ = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
  if (!nl_) throw_errno(errno, "netlink: open generic netlink socket");
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(nl_);
    throw_errno(err, "netlink: bind");
  }
  portid_ = mnl_socket_get_portid(nl_);

  alignas(nlmsghdr) char buf[kNlBufSize];
  std::optional<FamilyInfo> info;
  try {
    request(build_get_family(buf, ++seq_, uapi::kPmFamilyName), "resolve generic netlink family mptcp_pm",
            [&](const nlmsghdr* nlh) {
              info = parse_family(nlh, uapi::kPmEventsGroup);
              return info.has_value();
            });
  } catch (...) {
    mnl_socket_close(nl_);
    throw;
  }
  if (!info) {
    mnl_socket_close(nl_);
    throw_errno(ENOENT, "netlink: no mptcp_pm family");
  }
  family_id_ = info->id;
  events_group_ = info->events_group;
}

MptcpPm::~MptcpPm() {
  if (nl_) mnl_socket_close(nl_);
}

template <typename F>
void MptcpPm::request(nlmsghdr* nlh, const char* what, F&& on_msg) {
  const std::uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) throw_errno(errno, std::string("netlink: ") + what);
  CbData d{&on_msg, [](void* fn, const nlmsghdr* m) { return (*static_cast<F*>(fn))(m); }};
  alignas(nlmsghdr) char buf[kNlBufSize];
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl_, buf, sizeof buf);
    if (n < 0) throw_errno(errno, std::string("netlink: ") + what);
    const int r = mnl_cb_run(buf, static_cast<std::size_t>(n), seq, portid_, data_cb, &d);
    if (r == MNL_CB_STOP) return;
    if (r < 0) {
      const int err = errno ? errno : EPROTO;
      throw_errno(err, std::string("netlink: ") + what);
    }
  }
}

PmLimits MptcpPm::get_limits() {
  alignas(nlmsghdr) char buf[kNlBufSize];
  std::optional<PmLimits> l;
  request(build_get_limits(buf, family_id_, ++seq_), "get MPTCP limits", [&](const nlmsghdr* nlh) {
    l = parse_limits(nlh);
    return l.has_value();
  });
  if (!l) throw_errno(EPROTO, "netlink: get MPTCP limits: empty reply");
  return *l;
}

void MptcpPm::set_limits(const PmLimits& lim) {
  alignas(nlmsghdr) char buf[kNlBufSize];
  request(build_set_limits(buf, family_id_, ++seq_, lim), "set MPTCP limits",
          [](const nlmsghdr*) { return true; });
}

std::vector<Endpoint> MptcpPm::endpoints() {
  alignas(nlmsghdr) char buf[kNlBufSize];
  std::vector<Endpoint> out;
  request(build_get_addr_dump(buf, family_id_, ++seq_), "dump MPTCP endpoints",
          [&](const nlmsghdr* nlh) {
            if (auto ep = parse_endpoint(nlh)) out.push_back(*ep);
            return true;
          });
  return out;
}

std::uint8_t MptcpPm::add_endpoint(const Endpoint& ep) {
  alignas(nlmsghdr) char buf[kNlBufSize];
  request(build_add_addr(buf, family_id_, ++seq_, ep), "add MPTCP endpoint",
          [](const nlmsghdr*) { return true; });
  for (const Endpoint& e : endpoints()) {
    if (e.addr == ep.addr && e.port == ep.port) return e.id;
  }
  throw_errno(ENOENT, "netlink: endpoint vanished right after it was added");
}

void MptcpPm::del_endpoint(std::uint8_t id) {
  alignas(nlmsghdr) char buf[kNlBufSize];
  request(build_del_addr(buf, family_id_, ++seq_, id), "delete MPTCP endpoint",
          [](const nlmsghdr*) { return true; });
}

PmEventSocket::PmEventSocket(std::uint32_t group) {
  nl_ = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!nl_) throw_errno(errno, "netlink: open event socket");
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0 ||
      mnl_socket_setsockopt(nl_, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    const int err = errno;
    mnl_socket_close(nl_);
    throw_errno(err, "netlink: join mptcp_pm_events");
  }
}

PmEventSocket::~PmEventSocket() {
  if (nl_) mnl_socket_close(nl_);
}

int PmEventSocket::fd() const { return mnl_socket_get_fd(nl_); }

std::vector<PmEventMsg> PmEventSocket::read() {
  std::vector<PmEventMsg> out;
  alignas(nlmsghdr) char buf[kNlBufSize];
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl_, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN, or ENOBUFS after an overrun: the caller re-polls
    auto cb = [](const nlmsghdr* nlh, void* data) {
      if (auto ev = parse_event(nlh)) static_cast<std::vector<PmEventMsg>*>(data)->push_back(*ev);
      return MNL_CB_OK;
    };
    mnl_cb_run(buf, static_cast<std::size_t>(n), 0, 0, cb, &out);
  }
  return out;
}

}  // namespace tunnel::netlink
