// The MPTCP kernel UAPI that tunneld uses, kept in the project because the
// distribution's <linux/mptcp.h> lags the running kernel (6.18). Values are
// ABI and match include/uapi/linux/mptcp.h and mptcp_pm.h.
#pragma once

#include <cstdint>

namespace tunnel::uapi {

inline constexpr int kIpprotoMptcp = 262;  // IPPROTO_MPTCP
inline constexpr int kSolMptcp = 284;      // SOL_MPTCP
inline constexpr int kTcpIsMptcp = 43;     // TCP_IS_MPTCP (SOL_TCP)
inline constexpr int kMptcpInfo = 1;       // MPTCP_INFO
inline constexpr int kMptcpTcpInfo = 2;    // MPTCP_TCPINFO
inline constexpr int kMptcpSubflowAddrs = 3;

inline constexpr const char* kPmFamilyName = "mptcp_pm";
inline constexpr const char* kPmEventsGroup = "mptcp_pm_events";
inline constexpr std::uint8_t kPmVersion = 1;

enum PmCmd : std::uint8_t {
  kPmCmdAddAddr = 1,
  kPmCmdDelAddr = 2,
  kPmCmdGetAddr = 3,
  kPmCmdFlushAddrs = 4,
  kPmCmdSetLimits = 5,
  kPmCmdGetLimits = 6,
  kPmCmdSetFlags = 7,
};

enum PmAttr : std::uint16_t {
  kPmAttrAddr = 1,          // nested PmAddrAttr
  kPmAttrRcvAddAddrs = 2,   // u32
  kPmAttrSubflows = 3,      // u32
  kPmAttrToken = 4,         // u32
  kPmAttrLocId = 5,         // u8
  kPmAttrAddrRemote = 6,    // nested
  kPmAttrMax = 6,
};

enum PmAddrAttr : std::uint16_t {
  kPmAddrAttrFamily = 1,  // u16
  kPmAddrAttrId = 2,      // u8
  kPmAddrAttrAddr4 = 3,   // struct in_addr (network order)
  kPmAddrAttrAddr6 = 4,   // struct in6_addr
  kPmAddrAttrPort = 5,    // u16, host order
  kPmAddrAttrFlags = 6,   // u32
  kPmAddrAttrIfIdx = 7,   // s32
  kPmAddrAttrMax = 7,
};

enum PmAddrFlag : std::uint32_t {
  kPmAddrFlagSignal = 1u << 0,
  kPmAddrFlagSubflow = 1u << 1,
  kPmAddrFlagBackup = 1u << 2,
  kPmAddrFlagFullmesh = 1u << 3,
  kPmAddrFlagImplicit = 1u << 4,
};

enum PmEvent : std::uint8_t {
  kEventCreated = 1,
  kEventEstablished = 2,
  kEventClosed = 3,
  kEventAnnounced = 6,
  kEventRemoved = 7,
  kEventSubEstablished = 10,
  kEventSubClosed = 11,
  kEventSubPriority = 13,
};

enum PmEventAttr : std::uint16_t {
  kEvAttrToken = 1,    // u32
  kEvAttrFamily = 2,   // u16
  kEvAttrLocId = 3,    // u8
  kEvAttrRemId = 4,    // u8
  kEvAttrSaddr4 = 5,   // be32
  kEvAttrSaddr6 = 6,   // in6_addr
  kEvAttrDaddr4 = 7,   // be32
  kEvAttrDaddr6 = 8,   // in6_addr
  kEvAttrSport = 9,    // be16
  kEvAttrDport = 10,   // be16
  kEvAttrBackup = 11,  // u8
  kEvAttrError = 12,   // u8
  kEvAttrFlags = 13,   // u16
  kEvAttrTimeout = 14, // u32
  kEvAttrIfIdx = 15,   // s32
  kEvAttrResetReason = 16,
  kEvAttrResetFlags = 17,
  kEvAttrServerSide = 18,  // u8
  kEvAttrMax = 18,
};

// The PM accepts at most this many subflows / accepted ADD_ADDRs.
inline constexpr std::uint32_t kPmMaxLimit = 8;

inline constexpr std::uint32_t kInfoFlagFallback = 1u << 0;

// struct mptcp_info, the prefix that tunneld reads (the kernel may return more).
struct MptcpInfo {
  std::uint8_t subflows;
  std::uint8_t add_addr_signal;
  std::uint8_t add_addr_accepted;
  std::uint8_t subflows_max;
  std::uint8_t add_addr_signal_max;
  std::uint8_t add_addr_accepted_max;
  std::uint32_t flags;
  std::uint32_t token;
  std::uint64_t write_seq;
  std::uint64_t snd_una;
  std::uint64_t rcv_nxt;
  std::uint8_t local_addr_used;
  std::uint8_t local_addr_max;
  std::uint8_t csum_enabled;
  std::uint32_t retransmits;
  std::uint64_t bytes_retrans;
  std::uint64_t bytes_sent;
  std::uint64_t bytes_received;
  std::uint64_t bytes_acked;
};

// struct mptcp_subflow_data: header of the MPTCP_TCPINFO / MPTCP_SUBFLOW_ADDRS
// replies, followed by num_subflows elements of size_user bytes each.
struct alignas(8) SubflowData {
  std::uint32_t size_subflow_data;
  std::uint32_t num_subflows;
  std::uint32_t size_kernel;
  std::uint32_t size_user;
};

// struct tcp_info from <linux/tcp.h>, through tcpi_snd_wnd (kernel 5.4+). Kept
// here because <netinet/tcp.h>, which Asio pulls in, has an older layout and
// clashes with <linux/tcp.h>.
struct TcpInfo {
  std::uint8_t state, ca_state, retransmits, probes, backoff, options;
  std::uint8_t wscale;      // snd_wscale:4, rcv_wscale:4
  std::uint8_t app_limited; // delivery_rate_app_limited:1, fastopen_client_fail:2
  std::uint32_t rto, ato, snd_mss, rcv_mss;
  std::uint32_t unacked, sacked, lost, retrans, fackets;
  std::uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
  std::uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
  std::uint32_t rcv_rtt, rcv_space;
  std::uint32_t total_retrans;
  std::uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  std::uint32_t segs_out, segs_in;
  std::uint32_t notsent_bytes, min_rtt, data_segs_in, data_segs_out;
  std::uint64_t delivery_rate;
  std::uint64_t busy_time, rwnd_limited, sndbuf_limited;
  std::uint32_t delivered, delivered_ce;
  std::uint64_t bytes_sent, bytes_retrans;
  std::uint32_t dsack_dups, reord_seen;
  std::uint32_t rcv_ooopack;
  std::uint32_t snd_wnd;
};
static_assert(sizeof(TcpInfo) == 232, "struct tcp_info layout");

}  // namespace tunnel::uapi
