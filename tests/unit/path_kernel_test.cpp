// PathMonitor, PathSetup and check_path against the real kernel, inside a
// private network namespace so the host is untouched. Skips when not root or
// when namespaces or MPTCP are missing. Interfaces are made with ip(8).
#include <tunnel/mptcp_pm.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_check.hpp>
#include <tunnel/path_monitor.hpp>
#include <tunnel/path_setup.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <system_error>

namespace ip = boost::asio::ip;
using tunnel::PathDecision;
using K = PathDecision::Kind;

namespace {

class PathKernel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    ok_ = ::unshare(CLONE_NEWNET) == 0;  // the whole test process moves; the namespace dies with it
    if (ok_) ok_ = std::system("ip link set lo up") == 0;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
    if (!ok_) GTEST_SKIP() << "unshare(CLONE_NEWNET) refused or ip(8) missing";
  }
  static void sh(const char* cmd) { ASSERT_EQ(std::system(cmd), 0) << cmd; }
  static inline bool ok_ = false;
};

// Waits up to 3 s for decisions matching `done`; returns all seen meanwhile.
template <typename Pred>
std::vector<PathDecision> wait_for(tunnel::PathMonitor& mon, Pred done) {
  std::vector<PathDecision> all;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!done(all) && std::chrono::steady_clock::now() < until) {
    pollfd p{mon.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      EXPECT_EQ(mon.on_readable(all), tunnel::MonitorResult::ok);
    }
  }
  return all;
}

bool has(const std::vector<PathDecision>& v, K k, const char* a = nullptr) {
  for (const auto& d : v) {
    if (d.kind == k && (!a || d.addr == ip::make_address(a))) return true;
  }
  return false;
}

}  // namespace

TEST_F(PathKernel, MonitorAndSetupFollowALinkThroughRenumberingAndCarrierLoss) {
  std::unique_ptr<tunnel::netlink::MptcpPm> pm;
  try {
    pm = std::make_unique<tunnel::netlink::MptcpPm>();
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no MPTCP path manager: " << e.what();
  }
  tunnel::PathMonitor mon({"wan0"}, tunnel::FamilyPolicy::both);
  std::vector<PathDecision> d;
  ASSERT_EQ(mon.start(d), tunnel::MonitorResult::ok);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(mon.tracker().state(0), tunnel::PathState::waiting);
  tunnel::PathSetup setup(*pm, 2, 2);
  const tunnel::PathSpec spec{"wan0", 0};
  auto apply = [&](const std::vector<PathDecision>& ds) {
    for (const auto& x : ds) {
      const auto r = setup.apply(x, spec);
      EXPECT_NE(r, tunnel::EndpointResult::failed) << tunnel::to_string(r);
    }
  };

  sh("ip link add wan0 type veth peer name peer0 && ip addr add 198.51.100.2/24 dev wan0 && "
     "ip link set peer0 up && ip link set wan0 up");
  auto got = wait_for(mon, [](const auto& v) { return has(v, K::path_up); });
  EXPECT_TRUE(has(got, K::add_endpoint, "198.51.100.2"));
  apply(got);
  auto eps = pm->endpoints();
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].addr, ip::make_address("198.51.100.2"));
  EXPECT_EQ(eps[0].ifindex, static_cast<int>(if_nametoindex("wan0")));
  EXPECT_EQ(eps[0].flags, tunnel::uapi::kPmAddrFlagSubflow);

  sh("ip addr del 198.51.100.2/24 dev wan0 && ip addr add 203.0.113.7/24 dev wan0");
  got = wait_for(mon, [](const auto& v) { return has(v, K::add_endpoint, "203.0.113.7"); });
  EXPECT_TRUE(has(got, K::remove_endpoint, "198.51.100.2"));
  apply(got);
  eps = pm->endpoints();
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].addr, ip::make_address("203.0.113.7"));

  sh("ip link set peer0 down");
  got = wait_for(mon, [](const auto& v) { return has(v, K::path_down); });
  EXPECT_TRUE(has(got, K::remove_endpoint, "203.0.113.7"));
  EXPECT_EQ(mon.tracker().state(0), tunnel::PathState::down);
  apply(got);
  EXPECT_TRUE(pm->endpoints().empty());

  // The interface goes away and comes back with another index.
  sh("ip link del wan0 && ip link add wan0 type veth peer name peer0 && ip addr add 192.0.2.5/24 dev wan0 && "
     "ip link set peer0 up && ip link set wan0 up");
  got = wait_for(mon, [](const auto& v) { return has(v, K::path_up); });
  apply(got);
  eps = pm->endpoints();
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].addr, ip::make_address("192.0.2.5"));
  EXPECT_EQ(eps[0].ifindex, static_cast<int>(if_nametoindex("wan0")));
  sh("ip link del wan0");
}

TEST_F(PathKernel, DeletingAnUnknownEndpointIdIsEinval) {
  std::unique_ptr<tunnel::netlink::MptcpPm> pm;
  try {
    pm = std::make_unique<tunnel::netlink::MptcpPm>();
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no MPTCP path manager: " << e.what();
  }
  try {
    pm->del_endpoint(200);
    ADD_FAILURE() << "deleted a missing endpoint";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);  // PathSetup treats it as "already gone"
  }
}

TEST_F(PathKernel, CheckPathTellsTunByDriver) {
  EXPECT_EQ(tunnel::check_path("lo", "ha0"), tunnel::PathRefusal::loopback);
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/net/tun";
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", "tkt0");
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0);
  const int idx = static_cast<int>(if_nametoindex("tkt0"));
  EXPECT_EQ(tunnel::interface_kind("tkt0"), tunnel::InterfaceKind::tun);
  EXPECT_EQ(tunnel::check_path("tkt0", "ha0", idx), tunnel::PathRefusal::own_tun);
  EXPECT_EQ(tunnel::check_path("tkt0", "ha0", idx + 1), std::nullopt);
  sh("ip link add wan9 type veth peer name peer9");
  EXPECT_EQ(tunnel::interface_kind("wan9"), tunnel::InterfaceKind::other);
  EXPECT_EQ(tunnel::interface_kind("nosuch0"), tunnel::InterfaceKind::absent);
  sh("ip link del wan9");
  ::close(fd);
}
