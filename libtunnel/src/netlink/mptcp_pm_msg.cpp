// Building and parsing of mptcp_pm generic netlink messages, iproute2 style:
// arguments are already validated by the caller; attributes are emitted into
// the caller's buffer; replies are parsed into a table indexed by attribute
// type after each attribute's length has been checked.
#include <tunnel/mptcp_pm_msg.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include <array>
#include <cstring>

namespace tunnel::netlink {
namespace ip = boost::asio::ip;
namespace {

nlmsghdr* put_genl(void* buf, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                   std::uint8_t cmd, std::uint8_t version) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = seq;
  auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  genl->cmd = cmd;
  genl->version = version;
  return nlh;
}

// Expected payload size of each attribute in a table; 0 = not checked here.
template <std::size_t N>
struct AttrTable {
  std::array<const nlattr*, N + 1> tb{};
  const std::array<int, N + 1>* sizes;  // exact length, -1 = string/any
  bool bad = false;
};

template <std::size_t N>
int table_cb(const nlattr* attr, void* data) {
  auto* t = static_cast<AttrTable<N>*>(data);
  const int type = mnl_attr_get_type(attr);
  if (type <= 0 || static_cast<std::size_t>(type) > N) return MNL_CB_OK;  // unknown: skip
  const int want = (*t->sizes)[type];
  if (want > 0 && mnl_attr_get_payload_len(attr) < static_cast<std::uint16_t>(want)) {
    t->bad = true;
    return MNL_CB_ERROR;
  }
  t->tb[type] = attr;
  return MNL_CB_OK;
}

constexpr std::array<int, uapi::kPmAddrAttrMax + 1> kAddrSizes = {
    0, /*family*/ 2, /*id*/ 1, /*addr4*/ 4, /*addr6*/ 16, /*port*/ 2, /*flags*/ 4, /*ifidx*/ 4};
constexpr std::array<int, uapi::kPmAttrMax + 1> kPmSizes = {0, -1, 4, 4, 4, 1, -1};
constexpr std::array<int, uapi::kEvAttrMax + 1> kEventSizes = {
    0, /*token*/ 4, /*family*/ 2, /*loc_id*/ 1, /*rem_id*/ 1, /*saddr4*/ 4, /*saddr6*/ 16,
    /*daddr4*/ 4, /*daddr6*/ 16, /*sport*/ 2, /*dport*/ 2, /*backup*/ 1, /*error*/ 1,
    /*flags*/ 2, /*timeout*/ 4, /*ifidx*/ 4, /*reset reason*/ 4, /*reset flags*/ 4,
    /*server side*/ 1};

const genlmsghdr* genl_of(const nlmsghdr* nlh) {
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(genlmsghdr)) return nullptr;
  return static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
}

// Checks the generic netlink header and parses the top-level attributes.
template <std::size_t N>
std::optional<AttrTable<N>> parse_top(const nlmsghdr* nlh, const std::array<int, N + 1>& sizes) {
  if (!genl_of(nlh)) return std::nullopt;
  AttrTable<N> t{.sizes = &sizes};
  if (mnl_attr_parse(nlh, sizeof(genlmsghdr), table_cb<N>, &t) != MNL_CB_OK || t.bad) return std::nullopt;
  return t;
}

std::optional<ip::address> addr_from(const nlattr* a4, const nlattr* a6) {
  if (a4) {
    std::uint32_t be;
    std::memcpy(&be, mnl_attr_get_payload(a4), 4);
    return ip::address_v4(ntohl(be));
  }
  if (a6) {
    ip::address_v6::bytes_type b;
    std::memcpy(b.data(), mnl_attr_get_payload(a6), 16);
    return ip::address_v6(b);
  }
  return std::nullopt;
}

}  // namespace

std::string endpoint_flags_to_string(std::uint32_t flags) {
  std::string s;
  auto add = [&](std::uint32_t bit, const char* name) {
    if (flags & bit) {
      if (!s.empty()) s += ',';
      s += name;
    }
  };
  add(uapi::kPmAddrFlagSignal, "signal");
  add(uapi::kPmAddrFlagSubflow, "subflow");
  add(uapi::kPmAddrFlagBackup, "backup");
  add(uapi::kPmAddrFlagFullmesh, "fullmesh");
  add(uapi::kPmAddrFlagImplicit, "implicit");
  return s.empty() ? "none" : s;
}

nlmsghdr* build_get_family(void* buf, std::uint32_t seq, const char* family_name) {
  nlmsghdr* nlh = put_genl(buf, GENL_ID_CTRL, NLM_F_ACK, seq, CTRL_CMD_GETFAMILY, 1);
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, family_name);
  return nlh;
}

nlmsghdr* build_add_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, const Endpoint& ep) {
  nlmsghdr* nlh = put_genl(buf, family_id, NLM_F_ACK, seq, uapi::kPmCmdAddAddr, uapi::kPmVersion);
  nlattr* nest = mnl_attr_nest_start(nlh, uapi::kPmAttrAddr | NLA_F_NESTED);
  if (ep.addr.is_v4()) {
    mnl_attr_put_u16(nlh, uapi::kPmAddrAttrFamily, AF_INET);
    const std::uint32_t be = htonl(ep.addr.to_v4().to_uint());
    mnl_attr_put(nlh, uapi::kPmAddrAttrAddr4, 4, &be);
  } else {
    mnl_attr_put_u16(nlh, uapi::kPmAddrAttrFamily, AF_INET6);
    const auto b = ep.addr.to_v6().to_bytes();
    mnl_attr_put(nlh, uapi::kPmAddrAttrAddr6, 16, b.data());
  }
  if (ep.id) mnl_attr_put_u8(nlh, uapi::kPmAddrAttrId, ep.id);
  if (ep.port) mnl_attr_put_u16(nlh, uapi::kPmAddrAttrPort, ep.port);  // host order
  if (ep.flags) mnl_attr_put_u32(nlh, uapi::kPmAddrAttrFlags, ep.flags);
  if (ep.ifindex) mnl_attr_put_u32(nlh, uapi::kPmAddrAttrIfIdx, static_cast<std::uint32_t>(ep.ifindex));
  mnl_attr_nest_end(nlh, nest);
  return nlh;
}

nlmsghdr* build_del_addr(void* buf, std::uint16_t family_id, std::uint32_t seq, std::uint8_t id) {
  nlmsghdr* nlh = put_genl(buf, family_id, NLM_F_ACK, seq, uapi::kPmCmdDelAddr, uapi::kPmVersion);
  nlattr* nest = mnl_attr_nest_start(nlh, uapi::kPmAttrAddr | NLA_F_NESTED);
  mnl_attr_put_u8(nlh, uapi::kPmAddrAttrId, id);
  mnl_attr_nest_end(nlh, nest);
  return nlh;
}

nlmsghdr* build_get_addr_dump(void* buf, std::uint16_t family_id, std::uint32_t seq) {
  return put_genl(buf, family_id, NLM_F_DUMP, seq, uapi::kPmCmdGetAddr, uapi::kPmVersion);
}

nlmsghdr* build_get_limits(void* buf, std::uint16_t family_id, std::uint32_t seq) {
  return put_genl(buf, family_id, NLM_F_ACK, seq, uapi::kPmCmdGetLimits, uapi::kPmVersion);
}

nlmsghdr* build_set_limits(void* buf, std::uint16_t family_id, std::uint32_t seq, const PmLimits& l) {
  nlmsghdr* nlh = put_genl(buf, family_id, NLM_F_ACK, seq, uapi::kPmCmdSetLimits, uapi::kPmVersion);
  mnl_attr_put_u32(nlh, uapi::kPmAttrRcvAddAddrs, l.add_addr_accepted);
  mnl_attr_put_u32(nlh, uapi::kPmAttrSubflows, l.subflows);
  return nlh;
}

std::optional<FamilyInfo> parse_family(const nlmsghdr* nlh, const char* group_name) {
  if (!genl_of(nlh)) return std::nullopt;
  static constexpr std::array<int, CTRL_ATTR_MAX + 1> kSizes = [] {
    std::array<int, CTRL_ATTR_MAX + 1> s{};
    s[CTRL_ATTR_FAMILY_ID] = 2;
    return s;
  }();
  AttrTable<CTRL_ATTR_MAX> t{.sizes = &kSizes};
  if (mnl_attr_parse(nlh, sizeof(genlmsghdr), table_cb<CTRL_ATTR_MAX>, &t) != MNL_CB_OK || t.bad)
    return std::nullopt;
  if (!t.tb[CTRL_ATTR_FAMILY_ID]) return std::nullopt;
  FamilyInfo info;
  info.id = mnl_attr_get_u16(t.tb[CTRL_ATTR_FAMILY_ID]);
  if (const nlattr* groups = t.tb[CTRL_ATTR_MCAST_GROUPS]) {
    const auto* end = static_cast<const char*>(mnl_attr_get_payload(groups)) + mnl_attr_get_payload_len(groups);
    for (auto* grp = static_cast<const nlattr*>(mnl_attr_get_payload(groups));
         mnl_attr_ok(grp, static_cast<int>(end - reinterpret_cast<const char*>(grp))); grp = mnl_attr_next(grp)) {
      static constexpr std::array<int, CTRL_ATTR_MCAST_GRP_MAX + 1> kGrpSizes = {0, -1, 4};
      AttrTable<CTRL_ATTR_MCAST_GRP_MAX> g{.sizes = &kGrpSizes};
      if (mnl_attr_parse_nested(grp, table_cb<CTRL_ATTR_MCAST_GRP_MAX>, &g) != MNL_CB_OK || g.bad)
        return std::nullopt;
      const nlattr* name = g.tb[CTRL_ATTR_MCAST_GRP_NAME];
      const nlattr* id = g.tb[CTRL_ATTR_MCAST_GRP_ID];
      if (name && id && mnl_attr_validate(name, MNL_TYPE_NUL_STRING) == 0 &&
          std::strcmp(mnl_attr_get_str(name), group_name) == 0) {
        info.events_group = mnl_attr_get_u32(id);
      }
    }
  }
  return info;
}

std::optional<Endpoint> parse_endpoint(const nlmsghdr* nlh) {
  const auto t = parse_top<uapi::kPmAttrMax>(nlh, kPmSizes);
  if (!t || !t->tb[uapi::kPmAttrAddr]) return std::nullopt;
  AttrTable<uapi::kPmAddrAttrMax> a{.sizes = &kAddrSizes};
  if (mnl_attr_parse_nested(t->tb[uapi::kPmAttrAddr], table_cb<uapi::kPmAddrAttrMax>, &a) != MNL_CB_OK ||
      a.bad)
    return std::nullopt;
  auto addr = addr_from(a.tb[uapi::kPmAddrAttrAddr4], a.tb[uapi::kPmAddrAttrAddr6]);
  if (!addr) return std::nullopt;
  Endpoint ep;
  ep.addr = *addr;
  if (a.tb[uapi::kPmAddrAttrId]) ep.id = mnl_attr_get_u8(a.tb[uapi::kPmAddrAttrId]);
  if (a.tb[uapi::kPmAddrAttrPort]) ep.port = mnl_attr_get_u16(a.tb[uapi::kPmAddrAttrPort]);
  if (a.tb[uapi::kPmAddrAttrFlags]) ep.flags = mnl_attr_get_u32(a.tb[uapi::kPmAddrAttrFlags]);
  if (a.tb[uapi::kPmAddrAttrIfIdx])
    ep.ifindex = static_cast<int>(mnl_attr_get_u32(a.tb[uapi::kPmAddrAttrIfIdx]));
  return ep;
}

std::optional<PmLimits> parse_limits(const nlmsghdr* nlh) {
  const auto t = parse_top<uapi::kPmAttrMax>(nlh, kPmSizes);
  if (!t || !t->tb[uapi::kPmAttrSubflows] || !t->tb[uapi::kPmAttrRcvAddAddrs]) return std::nullopt;
  return PmLimits{mnl_attr_get_u32(t->tb[uapi::kPmAttrSubflows]),
                  mnl_attr_get_u32(t->tb[uapi::kPmAttrRcvAddAddrs])};
}

std::optional<PmEventMsg> parse_event(const nlmsghdr* nlh) {
  const auto parsed = parse_top<uapi::kEvAttrMax>(nlh, kEventSizes);
  if (!parsed || !parsed->tb[uapi::kEvAttrToken]) return std::nullopt;
  const auto& t = *parsed;
  PmEventMsg ev;
  ev.type = genl_of(nlh)->cmd;
  ev.token = mnl_attr_get_u32(t.tb[uapi::kEvAttrToken]);
  ev.saddr = addr_from(t.tb[uapi::kEvAttrSaddr4], t.tb[uapi::kEvAttrSaddr6]);
  ev.daddr = addr_from(t.tb[uapi::kEvAttrDaddr4], t.tb[uapi::kEvAttrDaddr6]);
  if (t.tb[uapi::kEvAttrSport]) ev.sport = ntohs(mnl_attr_get_u16(t.tb[uapi::kEvAttrSport]));
  if (t.tb[uapi::kEvAttrDport]) ev.dport = ntohs(mnl_attr_get_u16(t.tb[uapi::kEvAttrDport]));
  if (t.tb[uapi::kEvAttrLocId]) ev.loc_id = mnl_attr_get_u8(t.tb[uapi::kEvAttrLocId]);
  if (t.tb[uapi::kEvAttrRemId]) ev.rem_id = mnl_attr_get_u8(t.tb[uapi::kEvAttrRemId]);
  if (t.tb[uapi::kEvAttrIfIdx]) ev.ifindex = static_cast<int>(mnl_attr_get_u32(t.tb[uapi::kEvAttrIfIdx]));
  if (t.tb[uapi::kEvAttrError]) ev.error = mnl_attr_get_u8(t.tb[uapi::kEvAttrError]);
  if (t.tb[uapi::kEvAttrBackup]) ev.backup = mnl_attr_get_u8(t.tb[uapi::kEvAttrBackup]) != 0;
  return ev;
}

}  // namespace tunnel::netlink
