#include <tunnel/address.hpp>

#include <gtest/gtest.h>

TEST(Address, HostPort) {
  auto e = tunnel::parse_host_port("198.18.0.1:7000");
  EXPECT_EQ(e.address().to_string(), "198.18.0.1");
  EXPECT_EQ(e.port(), 7000);
  e = tunnel::parse_host_port("[fd00::1]:443");
  EXPECT_EQ(e.address().to_string(), "fd00::1");
  EXPECT_EQ(e.port(), 443);
  for (const char* bad : {"198.18.0.1", "198.18.0.1:0", "198.18.0.1:65536", "fd00::1:80", "[fd00::1]", "x:1",
                          "1.2.3.4:8o", ":80", "[fd00::1]80"}) {
    EXPECT_THROW(tunnel::parse_host_port(bad), std::invalid_argument) << bad;
  }
}

TEST(Address, Prefix) {
  auto p = tunnel::parse_prefix("198.18.100.1/30");
  EXPECT_EQ(p.length, 30u);
  EXPECT_EQ(p.to_string(), "198.18.100.1/30");
  EXPECT_EQ(tunnel::parse_prefix("fd00::1").length, 128u);
  EXPECT_EQ(tunnel::parse_prefix("10.0.0.1").length, 32u);
  for (const char* bad : {"198.18.0.1/33", "fd00::1/129", "1.2.3.4/", "1.2.3.4/x", "nope/24"}) {
    EXPECT_THROW(tunnel::parse_prefix(bad), std::invalid_argument) << bad;
  }
}
