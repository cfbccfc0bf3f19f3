// TUN set-up against the real kernel, inside a private network namespace so
// the host is untouched. Skips when not root or when namespaces are refused.
#include <tunnel/rtnl.hpp>
#include <tunnel/tun_device.hpp>

#include <gtest/gtest.h>

#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace {
class TunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    ok_ = ::unshare(CLONE_NEWNET) == 0;  // the whole test process moves; the namespace dies with it
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (TUN and a network namespace)";
    if (!ok_) GTEST_SKIP() << "unshare(CLONE_NEWNET) refused";
  }
  static inline bool ok_ = false;
};

// Interface facts through ioctl: /sys shows the namespace it was mounted in.
ifreq query(const char* ifname, unsigned long req) {
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::ioctl(fd, req, &ifr), 0) << ifname;
  ::close(fd);
  return ifr;
}
}  // namespace

TEST_F(TunTest, CreatesConfiguresAndRemovesDevice) {
  {
    tunnel::TunDevice tun({"tuntest0", 1400, {tunnel::parse_prefix("198.18.200.1/24"), tunnel::parse_prefix("fd00:200::1/64")}});
    EXPECT_GE(tun.fd(), 0);
    EXPECT_FALSE(tun.attached_existing());
    EXPECT_EQ(tun.ifindex(), static_cast<int>(if_nametoindex("tuntest0")));
    EXPECT_EQ(query("tuntest0", SIOCGIFMTU).ifr_mtu, 1400);
    EXPECT_EQ(query("tuntest0", SIOCGIFFLAGS).ifr_flags & IFF_UP, IFF_UP);
    ifreq tf{};
    ASSERT_EQ(::ioctl(tun.fd(), TUNGETIFF, &tf), 0);
    EXPECT_EQ(tf.ifr_flags & (IFF_TUN | IFF_NO_PI | IFF_TAP), IFF_TUN | IFF_NO_PI);
    auto v4 = tunnel::rtnl::primary_address(tun.ifindex(), AF_INET);
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->to_string(), "198.18.200.1");
    auto v6 = tunnel::rtnl::primary_address(tun.ifindex(), AF_INET6);
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->to_string(), "fd00:200::1");
  }
  EXPECT_EQ(if_nametoindex("tuntest0"), 0u) << "a non-persistent TUN goes away with its fd";
}

TEST_F(TunTest, RejectsBadNames) {
  EXPECT_THROW(tunnel::TunDevice({"", 1500, {}}), std::system_error);
  EXPECT_THROW(tunnel::TunDevice({std::string(16, 'x'), 1500, {}}), std::system_error);
}

TEST_F(TunTest, RefusesAnInterfaceThatIsNotATun) {
  // "lo" exists and is not a TUN: TUNSETIFF must fail, with a clear error.
  try {
    tunnel::TunDevice t({"lo", 1500, {}});
    FAIL() << "attached to lo";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a free TUN"), std::string::npos) << e.what();
  }
}
