#include <tunnel/path_check.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using tunnel::InterfaceKind;
using tunnel::PathRefusal;

namespace {

// A fake /sys/class/net with the attributes the checks read.
class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tunneld-sysfs.XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    root = tmpl;
    iface("lo", {{"flags", "0x9"}, {"type", "772"}, {"ifindex", "1"}});
    iface("ha0", {{"flags", "0x1091"}, {"type", "65534"}, {"tun_flags", "0x1001"}, {"ifindex", "7"}});
    iface("vpn1", {{"flags", "0x1091"}, {"type", "65534"}, {"tun_flags", "0x1001"}, {"ifindex", "8"}});
    iface("tap0", {{"flags", "0x1003"}, {"type", "1"}, {"tun_flags", "0x1002"}, {"ifindex", "9"}});
    // A raw-IP LTE modem: the same link type as a TUN, another driver.
    iface("wwan0", {{"flags", "0x1091"}, {"type", "65534"}, {"ifindex", "10"}});
    iface("eth0", {{"flags", "0x1003"}, {"type", "1"}, {"ifindex", "2"}});
  }
  void TearDown() override { fs::remove_all(root); }
  void iface(const std::string& name, std::initializer_list<std::pair<const char*, const char*>> attrs) {
    fs::create_directories(root + "/" + name);
    for (const auto& [k, v] : attrs) std::ofstream(root + "/" + name + "/" + k) << v << "\n";
  }
  std::string root;
};

}  // namespace

TEST_F(FakeSysfs, KindsByDriverNotLinkType) {
  EXPECT_EQ(tunnel::interface_kind("lo", root), InterfaceKind::loopback);
  EXPECT_EQ(tunnel::interface_kind("ha0", root), InterfaceKind::tun);
  EXPECT_EQ(tunnel::interface_kind("tap0", root), InterfaceKind::tap);
  EXPECT_EQ(tunnel::interface_kind("wwan0", root), InterfaceKind::other);
  EXPECT_EQ(tunnel::interface_kind("eth0", root), InterfaceKind::other);
  EXPECT_EQ(tunnel::interface_kind("ppp0", root), InterfaceKind::absent);
}

TEST_F(FakeSysfs, RefusesLoopbackAndOwnTunOnly) {
  EXPECT_EQ(tunnel::check_path("lo", "ha0", 0, root), PathRefusal::loopback);
  EXPECT_EQ(tunnel::check_path("ha0", "ha0", 0, root), PathRefusal::own_tun);
  EXPECT_EQ(tunnel::check_path("ha0", "ha0", 0, "/nonexistent"), PathRefusal::own_tun);  // by name, before it exists
  EXPECT_EQ(tunnel::check_path("vpn1", "ha0", 8, root), PathRefusal::own_tun);  // renamed: by index
  EXPECT_EQ(tunnel::check_path("vpn1", "ha0", 7, root), std::nullopt);
  EXPECT_EQ(tunnel::check_path("wwan0", "ha0", 7, root), std::nullopt);
  EXPECT_EQ(tunnel::check_path("eth0", "ha0", 7, root), std::nullopt);
  EXPECT_EQ(tunnel::check_path("ppp0", "ha0", 7, root), std::nullopt);  // waited for
  EXPECT_EQ(tunnel::check_path("", "ha0", 0, root), PathRefusal::bad_name);
  EXPECT_EQ(tunnel::check_path("../lo", "ha0", 0, root), PathRefusal::bad_name);
  EXPECT_EQ(tunnel::check_path("a-very-long-name0", "ha0", 0, root), PathRefusal::bad_name);
  EXPECT_EQ(tunnel::refusal_message("lo", PathRefusal::loopback), "--path lo: the loopback cannot carry a path");
}

TEST(PathCheck, RealLoopback) {
  if (!fs::exists("/sys/class/net/lo")) GTEST_SKIP() << "no sysfs";
  EXPECT_EQ(tunnel::check_path("lo", "ha0"), PathRefusal::loopback);
}
