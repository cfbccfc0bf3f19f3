// MPTCP in-kernel path manager over generic netlink (family "mptcp_pm"),
// through libmnl. Message building and parsing are free functions over caller
// buffers so that they can be tested against recorded kernel messages; the
// MptcpPm class adds the socket and request/reply handling.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct mnl_socket;  // libmnl

namespace tunnel::netlink {

struct Endpoint {
  std::uint8_t id = 0;  // 0: let the kernel choose
  boost::asio::ip::address addr;
  std::uint16_t port = 0;
  std::uint32_t flags = 0;  // uapi::PmAddrFlag bits
  int ifindex = 0;
  bool operator==(const Endpoint&) const = default;
};

struct PmLimits {
  std::uint32_t subflows = 0;
  std::uint32_t add_addr_accepted = 0;
  bool operator==(const PmLimits&) const = default;
};

// A path-manager event from the mptcp_pm_events multicast group.
struct PmEventMsg {
  std::uint8_t type = 0;  // uapi::PmEvent
  std::uint32_t token = 0;
  std::optional<boost::asio::ip::address> saddr, daddr;
  std::uint16_t sport = 0, dport = 0;
  std::uint8_t loc_id = 0, rem_id = 0;
  int ifindex = 0;
  std::uint8_t error = 0;
  bool backup = false;
};

std::string endpoint_flags_to_string(std::uint32_t flags);

// ---- message building: each writes one request into `buf` (at least
// 1024 bytes, aligned for nlmsghdr) and returns its header. ----
nlmsghdr* build_get_family(void* buf, std::uint32_t seq, const char* family_name);
nlmsghdr* build_add_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, const Endpoint& ep);
nlmsghdr* build_del_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, std::uint8_t id);
nlmsghdr* build_get_addr_dump(void* buf, std::uint16_t family_id, std::uint32_t seq);
nlmsghdr* build_get_limits(void* buf, std::uint16_t family_id, std::uint32_t seq);
nlmsghdr* build_set_limits(void* buf, std::uint16_t family_id, std::uint32_t seq, const PmLimits& l);

// ---- parsing: each validates every attribute's length before use and
// returns nullopt for a message that does not carry what it should. ----
struct FamilyInfo {
  std::uint16_t id = 0;
  std::optional<std::uint32_t> events_group;
};
std::optional<FamilyInfo> parse_family(const nlmsghdr* nlh, const char* group_name);
std::optional<Endpoint> parse_endpoint(const nlmsghdr* nlh);
std::optional<PmLimits> parse_limits(const nlmsghdr* nlh);
std::optional<PmEventMsg> parse_event(const nlmsghdr* nlh);

// The endpoint and limit operations of the in-kernel path manager, as
// PathSetup uses them; MptcpPm is the kernel's, tests supply their own. Every
// method throws std::system_error (code: the kernel's errno) on failure.
class PmBackend {
 public:
  virtual ~PmBackend() = default;
  virtual PmLimits get_limits() = 0;
  virtual void set_limits(const PmLimits& l) = 0;
  virtual std::vector<Endpoint> endpoints() = 0;
  // Adds `ep`; returns the id the kernel gave it. Throws with errc::file_exists
  // when an endpoint with that address exists already.
  virtual std::uint8_t add_endpoint(const Endpoint& ep) = 0;
  // Throws with errc::invalid_argument (EINVAL) when no endpoint has that id.
  virtual void del_endpoint(std::uint8_t id) = 0;
};

// A synchronous client of the in-kernel path manager. Constructor and methods
// throw std::system_error with a message naming the operation; these run at
// start-up, shutdown and on path events, never on the data path.
class MptcpPm final : public PmBackend {
 public:
  MptcpPm();
  ~MptcpPm() override;
  MptcpPm(const MptcpPm&) = delete;
  MptcpPm& operator=(const MptcpPm&) = delete;

  PmLimits get_limits() override;
  void set_limits(const PmLimits& l) override;
  std::vector<Endpoint> endpoints() override;
  std::uint8_t add_endpoint(const Endpoint& ep) override;
  void del_endpoint(std::uint8_t id) override;

  std::uint16_t family_id() const { return family_id_; }
  std::optional<std::uint32_t> events_group() const { return events_group_; }

 private:
  template <typename F>
  void request(nlmsghdr* nlh, const char* what, F&& on_msg);

  ::mnl_socket* nl_ = nullptr;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 0;
  std::uint16_t family_id_ = 0;
  std::optional<std::uint32_t> events_group_;
};

// A non-blocking subscription to the mptcp_pm_events group, for a reactor to
// poll. read() drains what is queued and returns the parsed events.
class PmEventSocket {
 public:
  explicit PmEventSocket(std::uint32_t group);
  ~PmEventSocket();
  PmEventSocket(const PmEventSocket&) = delete;
  PmEventSocket& operator=(const PmEventSocket&) = delete;
  int fd() const;
  std::vector<PmEventMsg> read();

 private:
  ::mnl_socket* nl_ = nullptr;
};

}  // namespace tunnel::netlink
