#include "recorded_netlink.hpp"

#include <tunnel/mptcp_pm_msg.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include <vector>

namespace nl = tunnel::netlink;
namespace ip = boost::asio::ip;

namespace {
// Splits a recorded buffer of one or more netlink messages.
std::vector<const nlmsghdr*> messages(const std::uint8_t* buf, std::size_t len) {
  std::vector<const nlmsghdr*> out;
  int rem = static_cast<int>(len);
  for (auto* h = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(h, rem);
       h = mnl_nlmsg_next(h, &rem)) {
    if (h->nlmsg_type >= NLMSG_MIN_TYPE) out.push_back(h);
  }
  return out;
}
}  // namespace

TEST(NetlinkReplay, FamilyReplyGivesIdAndEventsGroup) {
  auto msgs = messages(kRecorded_family, sizeof kRecorded_family);
  ASSERT_EQ(msgs.size(), 1u);
  auto fam = nl::parse_family(msgs[0], tunnel::uapi::kPmEventsGroup);
  ASSERT_TRUE(fam);
  EXPECT_GT(fam->id, GENL_MIN_ID - 1);
  ASSERT_TRUE(fam->events_group);
  EXPECT_FALSE(nl::parse_family(msgs[0], "no_such_group")->events_group);
}

TEST(NetlinkReplay, LimitsReply) {
  auto msgs = messages(kRecorded_limits, sizeof kRecorded_limits);
  ASSERT_EQ(msgs.size(), 1u);
  auto l = nl::parse_limits(msgs[0]);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->subflows, 3u);
  EXPECT_EQ(l->add_addr_accepted, 4u);
}

TEST(NetlinkReplay, EndpointDump) {
  auto msgs = messages(kRecorded_addrs, sizeof kRecorded_addrs);
  ASSERT_EQ(msgs.size(), 2u);
  auto a = nl::parse_endpoint(msgs[0]);
  auto b = nl::parse_endpoint(msgs[1]);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->addr, ip::make_address("198.18.5.1"));
  EXPECT_EQ(a->id, 7);
  EXPECT_EQ(a->flags, tunnel::uapi::kPmAddrFlagSubflow);
  EXPECT_EQ(a->ifindex, 3);
  EXPECT_EQ(b->addr, ip::make_address("fd00:5::1"));
  EXPECT_EQ(b->id, 9);
  EXPECT_EQ(b->flags, tunnel::uapi::kPmAddrFlagSignal | tunnel::uapi::kPmAddrFlagBackup);
  EXPECT_EQ(nl::endpoint_flags_to_string(b->flags), "signal,backup");
}

TEST(NetlinkReplay, TruncatedAttributeIsRejected) {
  std::vector<std::uint8_t> buf(kRecorded_limits, kRecorded_limits + sizeof kRecorded_limits);
  // Shrink the SUBFLOWS attribute's length field to 2 bytes: parsing must refuse it.
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  auto* attr = reinterpret_cast<nlattr*>(buf.data() + NLMSG_HDRLEN + GENL_HDRLEN + 8);
  ASSERT_EQ(attr->nla_type, tunnel::uapi::kPmAttrSubflows);
  attr->nla_len = 6;
  EXPECT_FALSE(nl::parse_limits(nlh));
}

TEST(NetlinkBuild, AddAddrRoundTripsThroughTheParser) {
  alignas(nlmsghdr) char buf[4096];
  nl::Endpoint ep;
  ep.addr = ip::make_address("198.18.2.1");
  ep.flags = tunnel::uapi::kPmAddrFlagSubflow | tunnel::uapi::kPmAddrFlagBackup;
  ep.ifindex = 12;
  ep.id = 4;
  nlmsghdr* nlh = nl::build_add_addr(buf, 0x1c, 99, ep);
  EXPECT_EQ(nlh->nlmsg_type, 0x1c);
  EXPECT_EQ(nlh->nlmsg_seq, 99u);
  EXPECT_TRUE(nlh->nlmsg_flags & NLM_F_ACK);
  auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(genl->cmd, tunnel::uapi::kPmCmdAddAddr);
  EXPECT_EQ(genl->version, tunnel::uapi::kPmVersion);
  auto back = nl::parse_endpoint(nlh);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, ep);

  ep.addr = ip::make_address("fd00:2::1");
  ep.id = 0;  // kernel chooses: attribute omitted
  back = nl::parse_endpoint(nl::build_add_addr(buf, 0x1c, 100, ep));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, ep);
}

TEST(NetlinkBuild, SetLimitsCarriesBoth) {
  alignas(nlmsghdr) char buf[4096];
  nlmsghdr* nlh = nl::build_set_limits(buf, 0x1c, 5, {8, 6});
  auto l = nl::parse_limits(nlh);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->subflows, 8u);
  EXPECT_EQ(l->add_addr_accepted, 6u);
  EXPECT_EQ(static_cast<genlmsghdr*>(mnl_nlmsg_get_payload(nlh))->cmd, tunnel::uapi::kPmCmdSetLimits);
}

TEST(NetlinkBuild, DelAddrCarriesOnlyTheId) {
  alignas(nlmsghdr) char buf[4096];
  nlmsghdr* nlh = nl::build_del_addr(buf, 0x1c, 5, 42);
  EXPECT_EQ(static_cast<genlmsghdr*>(mnl_nlmsg_get_payload(nlh))->cmd, tunnel::uapi::kPmCmdDelAddr);
  // parse_endpoint needs an address, so a DEL_ADDR message is not an endpoint.
  EXPECT_FALSE(nl::parse_endpoint(nlh));
  // The nested id attribute is there: header 4 + nest 4 + u8 attr (4+1 padded to 8).
  EXPECT_EQ(nlh->nlmsg_len, NLMSG_HDRLEN + GENL_HDRLEN + 4 + 8);
}

TEST(NetlinkEvent, ParsesSubflowEstablished) {
  alignas(nlmsghdr) char buf[4096];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = 0x1c;
  auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  g->cmd = tunnel::uapi::kEventSubEstablished;
  mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrToken, 0xdeadbeef);
  mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrSaddr4, htonl(0xc6120201));
  mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrDaddr4, htonl(0xc6120001));
  mnl_attr_put_u16(nlh, tunnel::uapi::kEvAttrSport, htons(40000));
  mnl_attr_put_u16(nlh, tunnel::uapi::kEvAttrDport, htons(7000));
  mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrIfIdx, 4);
  auto ev = nl::parse_event(nlh);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, tunnel::uapi::kEventSubEstablished);
  EXPECT_EQ(ev->token, 0xdeadbeefu);
  EXPECT_EQ(*ev->saddr, ip::make_address("198.18.2.1"));
  EXPECT_EQ(*ev->daddr, ip::make_address("198.18.0.1"));
  EXPECT_EQ(ev->sport, 40000);
  EXPECT_EQ(ev->dport, 7000);
  EXPECT_EQ(ev->ifindex, 4);
}
