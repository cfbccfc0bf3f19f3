#include <tunnel/mptcp_socket.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <system_error>

namespace ip = boost::asio::ip;

TEST(DualStack, EndpointMapping) {
  const ip::tcp::endpoint v4(ip::make_address("203.0.113.1"), 7000);
  const auto v6 = tunnel::to_v6_endpoint(v4);
  EXPECT_EQ(v6.address(), ip::make_address("::ffff:203.0.113.1"));
  EXPECT_EQ(v6.port(), 7000);
  EXPECT_EQ(tunnel::unmapped(v6), v4);
  const ip::tcp::endpoint real6(ip::make_address("2001:db8::1"), 7000);
  EXPECT_EQ(tunnel::to_v6_endpoint(real6), real6);
  EXPECT_EQ(tunnel::unmapped(real6), real6);
}

TEST(DualStack, SocketHasV6OnlyOffAndBindsAMappedSource) {
  int fd;
  try {
    fd = tunnel::open_dual_stack_mptcp_socket();
  } catch (const std::system_error& e) {
    GTEST_SKIP() << e.what();
  }
  int v = -1;
  socklen_t len = sizeof v;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len), 0);
  EXPECT_EQ(v, 0);
  EXPECT_FALSE(tunnel::bind_source(fd, ip::make_address("127.0.0.1")));
  sockaddr_in6 sin6{};
  len = sizeof sin6;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sin6), &len), 0);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr));
  ::close(fd);
}

TEST(DualStack, BindSourceOnAnIpv4Socket) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(tunnel::bind_source(fd, ip::make_address("127.0.0.1")));
  ::close(fd);
  const int fd2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(tunnel::bind_source(fd2, ip::make_address("192.0.2.77")));  // not ours: EADDRNOTAVAIL
  ::close(fd2);
}
