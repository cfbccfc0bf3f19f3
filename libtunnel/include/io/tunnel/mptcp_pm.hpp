// MPTCP in-kernel path manager over generic netlink (family "mptcp_pm"),
// through libmnl: the MptcpPm client and the event subscription. The
// messages themselves are built and parsed by mptcp_pm_msg.hpp.
#pragma once

#include <tunnel/mptcp_pm_msg.hpp>

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <vector>

struct mnl_socket;  // libmnl

namespace tunnel::netlink {

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
