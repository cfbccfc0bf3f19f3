#include "recorded_rtnl.hpp"

#include <tunnel/path_tracker.hpp>
#include <tunnel/rtnl_msg.hpp>

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cstring>
#include <vector>

namespace nl = tunnel::netlink;
namespace ip = boost::asio::ip;
using tunnel::FamilyPolicy;
using tunnel::PathDecision;
using tunnel::PathState;
using tunnel::PathTracker;
using K = PathDecision::Kind;

namespace {

constexpr unsigned kLowerUp = 0x10000;  // IFF_LOWER_UP, <linux/if.h>
constexpr unsigned kRunning = IFF_UP | IFF_RUNNING | kLowerUp;

PathDecision add(std::size_t p, const char* a, int idx) { return {K::add_endpoint, p, ip::make_address(a), idx}; }
PathDecision del(std::size_t p, const char* a, int idx) { return {K::remove_endpoint, p, ip::make_address(a), idx}; }
PathDecision up(std::size_t p, int idx) { return {K::path_up, p, {}, idx}; }
PathDecision down(std::size_t p, int idx) { return {K::path_down, p, {}, idx}; }

// Feeds messages to a tracker through their netlink encoding, as the monitor does.
struct Feed {
  PathTracker& t;
  std::vector<PathDecision> operator()(const nl::LinkMsg& m) {
    alignas(nlmsghdr) char buf[256];
    const auto parsed = nl::parse_link(nl::build_link_msg(buf, m));
    EXPECT_TRUE(parsed);
    std::vector<PathDecision> out;
    if (parsed) t.on_link(*parsed, out);
    return out;
  }
  std::vector<PathDecision> operator()(const nl::AddrMsg& m) {
    alignas(nlmsghdr) char buf[256];
    const auto parsed = nl::parse_addr(nl::build_addr_msg(buf, m));
    EXPECT_TRUE(parsed);
    std::vector<PathDecision> out;
    if (parsed) t.on_addr(*parsed, out);
    return out;
  }
};

nl::LinkMsg link(int idx, const char* name, unsigned flags = kRunning) { return {false, idx, name, flags}; }
nl::LinkMsg link_gone(int idx, const char* name) { return {true, idx, name, 0}; }
nl::AddrMsg addr(int idx, const char* a, std::uint32_t flags = IFA_F_PERMANENT, std::uint8_t scope = RT_SCOPE_UNIVERSE) {
  return {false, idx, ip::make_address(a), 24, scope, flags};
}
nl::AddrMsg addr_gone(int idx, const char* a) { return {true, idx, ip::make_address(a), 24, RT_SCOPE_UNIVERSE, 0}; }

}  // namespace

// The kernel's own messages, recorded while a veth came up, got an IPv4 and
// an IPv6 address, was renumbered, lost carrier, got it back and was deleted.
TEST(PathTracker, RecordedKernelEvents) {
  PathTracker t({"wan0"});
  std::vector<std::vector<PathDecision>> per_msg;
  std::vector<PathState> states;
  for (const auto& m : kRtnlEvents) {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(m.data);
    std::vector<PathDecision> out;
    if (auto l = nl::parse_link(nlh)) t.on_link(*l, out);
    else if (auto a = nl::parse_addr(nlh)) t.on_addr(*a, out);
    else ADD_FAILURE() << "message not parsed, type " << nlh->nlmsg_type;
    per_msg.push_back(out);
    states.push_back(t.state(0));
  }
  ASSERT_EQ(per_msg.size(), 27u);
  using V = std::vector<PathDecision>;
  EXPECT_EQ(states[1], PathState::down);  // wan0 created, admin down
  EXPECT_EQ(per_msg[2], V{});             // its IPv4 address: no carrier yet
  EXPECT_EQ(per_msg[4], V{});             // IFF_UP and carrier, not yet IFF_RUNNING
  EXPECT_EQ(per_msg[5], (V{add(0, "198.51.100.2", 3), up(0, 3)}));
  EXPECT_EQ(states[5], PathState::up);
  EXPECT_EQ(per_msg[7], V{});  // IPv6 address, tentative
  EXPECT_EQ(per_msg[8], V{});  // link-local
  EXPECT_EQ(per_msg[9], (V{add(0, "2001:db8:1::2", 3)}));  // DAD done
  EXPECT_EQ(per_msg[11], (V{del(0, "198.51.100.2", 3)}));  // renumbering
  EXPECT_EQ(per_msg[12], (V{add(0, "203.0.113.7", 3)}));
  EXPECT_EQ(per_msg[15], (V{del(0, "203.0.113.7", 3), del(0, "2001:db8:1::2", 3), down(0, 3)}));  // carrier lost
  EXPECT_EQ(states[15], PathState::down);
  EXPECT_EQ(per_msg[18], (V{add(0, "203.0.113.7", 3), add(0, "2001:db8:1::2", 3), up(0, 3)}));  // back
  EXPECT_EQ(per_msg[19], (V{del(0, "203.0.113.7", 3), del(0, "2001:db8:1::2", 3), down(0, 3)}));
  EXPECT_EQ(states.back(), PathState::waiting);  // deleted
  EXPECT_EQ(t.ifindex(0), 0);
  std::size_t total = 0;
  for (const auto& d : per_msg) total += d.size();
  EXPECT_EQ(total, 14u);  // nothing else: peer0 and link-local messages change nothing
}

TEST(PathTracker, WaitsForAMissingInterfaceAndPicksUpANewIndex) {
  PathTracker t({"dsl0", "lte0"});
  Feed f{t};
  EXPECT_EQ(t.state(0), PathState::waiting);
  EXPECT_TRUE(f(link(5, "lte0")).empty());
  EXPECT_EQ(t.state(1), PathState::waiting);  // link, no address
  EXPECT_EQ(f(addr(5, "2001:db8:5::9")), (std::vector{add(1, "2001:db8:5::9", 5), up(1, 5)}));
  EXPECT_EQ(f(link_gone(5, "lte0")), (std::vector{del(1, "2001:db8:5::9", 5), down(1, 5)}));
  EXPECT_EQ(t.state(1), PathState::waiting);
  // The modem comes back with another index; its old address is not assumed.
  EXPECT_TRUE(f(link(9, "lte0")).empty());
  EXPECT_EQ(f(addr(9, "2001:db8:6::1")), (std::vector{add(1, "2001:db8:6::1", 9), up(1, 9)}));
  EXPECT_EQ(t.ifindex(1), 9);
  EXPECT_EQ(t.state(0), PathState::waiting);
}

TEST(PathTracker, RenameToThePathNameBringsItsAddresses) {
  PathTracker t({"wan0"});
  Feed f{t};
  EXPECT_TRUE(f(link(7, "eth9")).empty());
  EXPECT_TRUE(f(addr(7, "192.0.2.10")).empty());
  EXPECT_EQ(f(link(7, "wan0")), (std::vector{add(0, "192.0.2.10", 7), up(0, 7)}));
  EXPECT_EQ(f(link(7, "old0")), (std::vector{del(0, "192.0.2.10", 7), down(0, 7)}));
}

TEST(PathTracker, UsableMeansGlobalAndPastDad) {
  PathTracker t({"wan0"});
  Feed f{t};
  f(link(2, "wan0"));
  EXPECT_TRUE(f(addr(2, "fe80::1", IFA_F_PERMANENT, RT_SCOPE_LINK)).empty());
  EXPECT_TRUE(f(addr(2, "2001:db8::1", IFA_F_TENTATIVE)).empty());
  EXPECT_TRUE(f(addr(2, "2001:db8::1", IFA_F_DADFAILED)).empty());
  EXPECT_TRUE(f(addr(2, "10.0.0.1", 0, RT_SCOPE_HOST)).empty());
  EXPECT_EQ(t.state(0), PathState::waiting);
  EXPECT_EQ(f(addr(2, "2001:db8::1", 0)), (std::vector{add(0, "2001:db8::1", 2), up(0, 2)}));
  // Address becoming dadfailed is loss of the address.
  EXPECT_EQ(f(addr(2, "2001:db8::1", IFA_F_DADFAILED)), (std::vector{del(0, "2001:db8::1", 2), down(0, 2)}));
}

TEST(PathTracker, OneAddressPerFamilyPreferringStableOnes) {
  PathTracker t({"wan0"});
  Feed f{t};
  f(link(2, "wan0"));
  EXPECT_EQ(f(addr(2, "2001:db8::100", IFA_F_TEMPORARY)), (std::vector{add(0, "2001:db8::100", 2), up(0, 2)}));
  // A stable address replaces the temporary one; another equal one does not churn.
  EXPECT_EQ(f(addr(2, "2001:db8::1", IFA_F_MANAGETEMPADDR)),
            (std::vector{del(0, "2001:db8::100", 2), add(0, "2001:db8::1", 2)}));
  EXPECT_TRUE(f(addr(2, "2001:db8::2", 0)).empty());
  // The prefix is deprecated (renumbering): a preferred address takes over,
  // even a temporary one, until the new prefix's stable address appears.
  EXPECT_TRUE(f(addr(2, "2001:db8::2", IFA_F_DEPRECATED)).empty());
  EXPECT_EQ(f(addr(2, "2001:db8::1", IFA_F_DEPRECATED | IFA_F_MANAGETEMPADDR)),
            (std::vector{del(0, "2001:db8::1", 2), add(0, "2001:db8::100", 2)}));
  EXPECT_EQ(f(addr(2, "2001:db8:2::1", 0)), (std::vector{del(0, "2001:db8::100", 2), add(0, "2001:db8:2::1", 2)}));
  EXPECT_EQ(t.endpoints(0), std::vector{ip::make_address("2001:db8:2::1")});
  EXPECT_EQ(t.usable_addresses(0).size(), 4u);
}

TEST(PathTracker, FamilyPolicies) {
  PathTracker pv4({"wan0"}, FamilyPolicy::prefer_v4);
  Feed f{pv4};
  f(link(2, "wan0"));
  EXPECT_EQ(f(addr(2, "2001:db8::1")), (std::vector{add(0, "2001:db8::1", 2), up(0, 2)}));
  EXPECT_EQ(f(addr(2, "192.0.2.1")), (std::vector{del(0, "2001:db8::1", 2), add(0, "192.0.2.1", 2)}));
  EXPECT_EQ(f(addr_gone(2, "192.0.2.1")), (std::vector{del(0, "192.0.2.1", 2), add(0, "2001:db8::1", 2)}));

  PathTracker o6({"wan0"}, FamilyPolicy::only_v6);
  Feed g{o6};
  g(link(2, "wan0"));
  EXPECT_TRUE(g(addr(2, "192.0.2.1")).empty());
  EXPECT_EQ(o6.state(0), PathState::waiting);
  EXPECT_EQ(g(addr(2, "2001:db8::1")), (std::vector{add(0, "2001:db8::1", 2), up(0, 2)}));
  EXPECT_EQ(o6.endpoint(0, AF_INET6), ip::make_address("2001:db8::1"));
  EXPECT_FALSE(o6.endpoint(0, AF_INET));
}

TEST(PathTracker, CarryingIsTheCallersReport) {
  PathTracker t({"wan0"});
  Feed f{t};
  t.set_carrying(0, true);
  EXPECT_EQ(t.state(0), PathState::waiting);  // ignored: nothing to carry on
  f(link(2, "wan0"));
  f(addr(2, "192.0.2.1"));
  t.set_carrying(0, true);
  EXPECT_EQ(t.state(0), PathState::carrying);
  f(addr(2, "2001:db8::1"));
  EXPECT_EQ(t.state(0), PathState::carrying);
  f(link(2, "wan0", IFF_UP));  // carrier lost
  EXPECT_EQ(t.state(0), PathState::down);
  f(link(2, "wan0"));
  EXPECT_EQ(t.state(0), PathState::up);
  EXPECT_STREQ(tunnel::to_string(t.state(0)), "up");
}

TEST(PathTracker, SnapshotResyncsAfterLostEvents) {
  PathTracker t({"wan0", "wan1"});
  std::vector<PathDecision> out;
  t.begin_snapshot();
  t.on_link(link(2, "wan0"), out);
  t.on_addr(addr(2, "192.0.2.1"), out);
  t.on_link(link(3, "wan1"), out);
  t.on_addr(addr(3, "198.51.100.1"), out);
  EXPECT_TRUE(out.empty());
  t.end_snapshot(out);
  EXPECT_EQ(out, (std::vector{add(0, "192.0.2.1", 2), up(0, 2), add(1, "198.51.100.1", 3), up(1, 3)}));
  // Events were lost: wan0 was renumbered, wan1 went away.
  out.clear();
  t.begin_snapshot();
  t.on_link(link(2, "wan0"), out);
  t.on_addr(addr(2, "192.0.2.77"), out);
  t.end_snapshot(out);
  EXPECT_EQ(out, (std::vector{del(0, "192.0.2.1", 2), add(0, "192.0.2.77", 2), del(1, "198.51.100.1", 3),
                              down(1, 3)}));
}

TEST(PathTracker, LookupsAndBadConfiguration) {
  PathTracker t({"wan0", "wan1"});
  Feed f{t};
  f(link(4, "wan1"));
  f(addr(4, "192.0.2.9"));
  EXPECT_EQ(t.path_of_address(ip::make_address("192.0.2.9")), 1u);
  EXPECT_EQ(t.path_of_address(ip::make_address("::ffff:192.0.2.9")), 1u);
  EXPECT_FALSE(t.path_of_address(ip::make_address("192.0.2.8")));
  EXPECT_EQ(t.path_of_ifindex(4), 1u);
  EXPECT_FALSE(t.path_of_ifindex(0));
  EXPECT_THROW(PathTracker({"a", "a"}), std::invalid_argument);
}

TEST(RtnlMsg, PointToPointUsesTheLocalAddress) {
  // PPP: IFA_ADDRESS is the peer, IFA_LOCAL ours.
  alignas(nlmsghdr) char buf[256];
  nlmsghdr* nlh = nl::build_addr_msg(buf, addr(8, "100.64.0.2"));
  auto* a = static_cast<nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(ifaddrmsg)));
  ASSERT_EQ(mnl_attr_get_type(a), IFA_ADDRESS);
  const std::uint8_t peer[4] = {100, 64, 0, 1};
  std::memcpy(mnl_attr_get_payload(a), peer, 4);
  const auto m = nl::parse_addr(nlh);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->addr, ip::make_address("100.64.0.2"));
}

TEST(RtnlMsg, RejectsShortAttributesAndOtherTypes) {
  alignas(nlmsghdr) char buf[256];
  nlmsghdr* nlh = nl::build_addr_msg(buf, addr(8, "192.0.2.1"));
  nlh->nlmsg_type = RTM_NEWROUTE;
  EXPECT_FALSE(nl::parse_addr(nlh));
  EXPECT_FALSE(nl::parse_link(nlh));
  // An IPv6 address message whose address attribute holds 4 bytes.
  nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET6;
  mnl_attr_put_u32(nlh, IFA_ADDRESS, 1);
  EXPECT_FALSE(nl::parse_addr(nlh));
  // IFA_FLAGS shorter than 4 bytes.
  nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  mnl_attr_put_u32(nlh, IFA_LOCAL, 1);
  mnl_attr_put_u16(nlh, IFA_FLAGS, 1);
  EXPECT_FALSE(nl::parse_addr(nlh));
  // A link message cut short of its ifinfomsg.
  nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  EXPECT_FALSE(nl::parse_link(nlh));
}
