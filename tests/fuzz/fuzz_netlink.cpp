// libFuzzer target for the netlink reply parsers: the input is a buffer of
// netlink messages as a socket read returns it; every message goes through
// every parser (mptcp_pm: family, endpoint, limits, event; rtnetlink: the
// address of a link), which must check each length before use. The first
// byte picks the link index and family the address parser looks for.
#include <tunnel/mptcp_pm_msg.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/rtnl_addr.hpp>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace nl = tunnel::netlink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 65536) return 0;
  alignas(nlmsghdr) static std::uint8_t buf[65536];
  std::memcpy(buf, data + 1, size - 1);
  const int ifindex = data[0] >> 1;
  const int family = data[0] & 1 ? AF_INET6 : AF_INET;
  int len = static_cast<int>(size - 1);
  // mnl_nlmsg_ok compares the length as an int, so a length of 2^31 or more
  // passes it: the unsigned check frames messages the way the kernel does.
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf);
       mnl_nlmsg_ok(nlh, len) && nlh->nlmsg_len <= static_cast<unsigned>(len); nlh = mnl_nlmsg_next(nlh, &len)) {
    (void)nl::parse_family(nlh, tunnel::uapi::kPmEventsGroup);
    (void)nl::parse_endpoint(nlh);
    (void)nl::parse_limits(nlh);
    (void)nl::parse_event(nlh);
    if (auto a = tunnel::rtnl::parse_global_address(nlh, ifindex, family)) {
      if (a->is_v4() != (family == AF_INET)) std::abort();
    }
  }
  return 0;
}

// Well-formed messages for the gcc replay (replay_main.cpp) to start from:
// mptcp_pm requests carry the same attributes as the replies, and an
// RTM_NEWADDR as the address dump returns it.
extern "C" void tunnel_fuzz_seed(std::mt19937_64& rng, std::vector<std::uint8_t>& out) {
  const std::uint8_t sel = static_cast<std::uint8_t>(rng());
  out.push_back(sel);
  alignas(nlmsghdr) std::uint8_t buf[1024];
  for (unsigned m = 0; m < 1 + rng() % 3; ++m) {
    nlmsghdr* nlh = nullptr;
    switch (rng() % 5) {
      case 0: {
        nl::Endpoint ep;
        ep.id = static_cast<std::uint8_t>(rng());
        ep.addr = rng() % 2 ? boost::asio::ip::address(boost::asio::ip::address_v4(static_cast<std::uint32_t>(rng())))
                            : boost::asio::ip::address(boost::asio::ip::make_address_v6("fd00::1"));
        ep.port = static_cast<std::uint16_t>(rng());
        ep.flags = static_cast<std::uint32_t>(rng() % 16);
        ep.ifindex = static_cast<int>(rng() % 64);
        nlh = nl::build_add_addr(buf, 0x1d, 1, ep);
        break;
      }
      case 1:
        nlh = nl::build_set_limits(buf, 0x1d, 2, {static_cast<std::uint32_t>(rng() % 9), 8});
        break;
      case 2: {  // a CTRL_CMD_NEWFAMILY reply's attributes
        nlh = nl::build_get_family(buf, 3, tunnel::uapi::kPmFamilyName);
        mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x1d);
        nlattr* groups = mnl_attr_nest_start(nlh, CTRL_ATTR_MCAST_GROUPS);
        nlattr* g = mnl_attr_nest_start(nlh, 1);
        mnl_attr_put_strz(nlh, CTRL_ATTR_MCAST_GRP_NAME, tunnel::uapi::kPmEventsGroup);
        mnl_attr_put_u32(nlh, CTRL_ATTR_MCAST_GRP_ID, static_cast<std::uint32_t>(rng() % 32));
        mnl_attr_nest_end(nlh, g);
        mnl_attr_nest_end(nlh, groups);
        break;
      }
      case 3: {  // a path-manager event
        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = 0x1d;
        auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
        genl->cmd = static_cast<std::uint8_t>(rng() % 14);
        mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrToken, static_cast<std::uint32_t>(rng()));
        mnl_attr_put_u16(nlh, tunnel::uapi::kEvAttrFamily, AF_INET);
        mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrSaddr4, static_cast<std::uint32_t>(rng()));
        mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrDaddr4, static_cast<std::uint32_t>(rng()));
        mnl_attr_put_u16(nlh, tunnel::uapi::kEvAttrSport, static_cast<std::uint16_t>(rng()));
        mnl_attr_put_u16(nlh, tunnel::uapi::kEvAttrDport, static_cast<std::uint16_t>(rng()));
        mnl_attr_put_u8(nlh, tunnel::uapi::kEvAttrLocId, static_cast<std::uint8_t>(rng()));
        mnl_attr_put_u32(nlh, tunnel::uapi::kEvAttrIfIdx, static_cast<std::uint32_t>(rng() % 64));
        break;
      }
      default: {
        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWADDR;
        auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
        const bool v6 = sel & 1;
        ifa->ifa_family = v6 ? AF_INET6 : AF_INET;
        ifa->ifa_index = rng() % 2 ? sel >> 1 : static_cast<unsigned>(rng() % 128);
        ifa->ifa_scope = rng() % 3 ? RT_SCOPE_UNIVERSE : RT_SCOPE_HOST;
        std::uint8_t a[16];
        for (auto& x : a) x = static_cast<std::uint8_t>(rng());
        mnl_attr_put(nlh, IFA_ADDRESS, v6 ? 16 : 4, a);
        if (!v6 && rng() % 2) mnl_attr_put(nlh, IFA_LOCAL, 4, a + 4);
        mnl_attr_put_strz(nlh, IFA_LABEL, "wan0");
        break;
      }
    }
    out.insert(out.end(), buf, buf + nlh->nlmsg_len);
  }
}
