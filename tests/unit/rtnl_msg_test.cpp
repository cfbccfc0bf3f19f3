// The rtnetlink address parser (rtnl_addr.hpp, rtnl_addr.cpp) on messages shaped
// like the kernel's RTM_NEWADDR replies.
#include <tunnel/rtnl_addr.hpp>

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

namespace {

struct Msg {
  alignas(nlmsghdr) std::uint8_t buf[512]{};
  nlmsghdr* nlh;
  Msg(int family, int ifindex, int scope) {
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWADDR;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<std::uint8_t>(family);
    ifa->ifa_index = static_cast<unsigned>(ifindex);
    ifa->ifa_scope = static_cast<std::uint8_t>(scope);
  }
};

TEST(RtnlMsg, GlobalAddressOfTheLinkAndFamily) {
  const std::uint8_t peer[4] = {198, 51, 100, 1}, local[4] = {198, 51, 100, 2};
  Msg ptp(AF_INET, 7, RT_SCOPE_UNIVERSE);
  mnl_attr_put(ptp.nlh, IFA_ADDRESS, 4, peer);
  mnl_attr_put(ptp.nlh, IFA_LOCAL, 4, local);
  mnl_attr_put_strz(ptp.nlh, IFA_LABEL, "wan0");
  auto a = tunnel::rtnl::parse_global_address(ptp.nlh, 7, AF_INET);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "198.51.100.2");  // IFA_LOCAL, not the peer
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(ptp.nlh, 8, AF_INET));
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(ptp.nlh, 7, AF_INET6));

  const std::uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  Msg m6(AF_INET6, 3, RT_SCOPE_UNIVERSE);
  mnl_attr_put(m6.nlh, IFA_ADDRESS, 16, v6);
  EXPECT_EQ(tunnel::rtnl::parse_global_address(m6.nlh, 3, AF_INET6)->to_string(), "fd00::1");

  Msg host(AF_INET6, 3, RT_SCOPE_HOST);
  mnl_attr_put(host.nlh, IFA_ADDRESS, 16, v6);
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(host.nlh, 3, AF_INET6));
}

TEST(RtnlMsg, MalformedMessagesAreRefused) {
  const std::uint8_t v6[16] = {0xfd};
  Msg wrong_len(AF_INET, 1, RT_SCOPE_UNIVERSE);
  mnl_attr_put(wrong_len.nlh, IFA_ADDRESS, 16, v6);  // 16 bytes for IPv4
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(wrong_len.nlh, 1, AF_INET));
  Msg none(AF_INET, 1, RT_SCOPE_UNIVERSE);
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(none.nlh, 1, AF_INET));
  Msg truncated(AF_INET, 1, RT_SCOPE_UNIVERSE);
  truncated.nlh->nlmsg_len = NLMSG_HDRLEN + 2;  // shorter than ifaddrmsg
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(truncated.nlh, 1, AF_INET));
  Msg other(AF_INET, 1, RT_SCOPE_UNIVERSE);
  other.nlh->nlmsg_type = RTM_DELADDR;
  EXPECT_FALSE(tunnel::rtnl::parse_global_address(other.nlh, 1, AF_INET));
}

}  // namespace
