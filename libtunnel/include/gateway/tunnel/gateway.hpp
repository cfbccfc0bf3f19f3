// The aggregation gateway's role (on the Node skeleton, node.hpp): accepts
// connections, runs the server side of each handshake, admits CPEs into its
// registry (the CPE table: one session per CPE id, prefixes that may not
// overlap, a bound on how many), routes TUN packets to sessions by
// longest-prefix match and holds a session whose connection broke for
// resume.
//
// Handshake, server side (docs/protocol.md, "Handshake"):
//   1. accept (an accept error waits 10 ms .. 1 s before the next, so EMFILE
//      cannot spin); at max_pending handshakes in progress, or
//      max_pending_per_source from the newcomer's source, the oldest such
//      handshake is dropped (counted in evicted_pending);
//   2. send CHALLENGE (version 3's header, the versions offered appended);
//   3. read HELLO in any version offered, within handshake_timeout;
//   4. check: the id's key and the proof (one answer, auth_failed, for an
//      unknown id and a wrong proof: an unknown id is checked against a decoy
//      key, so both cost the same); the claimed prefixes against the id's
//      binding in the key file; for link 0, admission in the CPE table
//      (resume, new session replacing an older one of the id, or refusal);
//      for a join (link > 0), that the session named is this id's;
//   5. send HELLO_ACK (or ERROR with the refusal's reason) and hand the
//      connection to the session's link.
#pragma once

#include <tunnel/cpe_table.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/handshake_conn.hpp>
#include <tunnel/log_limit.hpp>
#include <tunnel/node.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/shaper.hpp>
#include <tunnel/suite.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

namespace tunnel {

struct GatewayConfig {
  NodeConfig node;
  // Addresses to listen on (at least one). With several, each listening
  // socket is dual-stack (an IPv4 address v4-mapped) so that a connection
  // may have subflows of both families, and each address is announced to
  // CPEs with a `signal` endpoint: a CPE path of the other family joins there.
  std::vector<boost::asio::ip::tcp::endpoint> listen;
  std::string id;                                  // told to CPEs in HELLO_ACK (version 4)
  unsigned max_cpes = 1024;
  // Handshakes in progress at once; at the cap the oldest is dropped (counted
  // in evicted_pending), never the newcomer, so a flood cannot keep a CPE out.
  unsigned max_pending = 256;
  // Of those, from one source (an IPv4 address, an IPv6 /64); at the cap the
  // source's oldest is dropped. Sized for a carrier-grade NAT address with
  // many CPEs behind it: each holds a slot for about one round trip.
  unsigned max_pending_per_source = 32;
  std::chrono::milliseconds handshake_timeout{5000};
  std::shared_ptr<const hs::KeyTable> keys;        // nullptr: no authentication
  // An id without prefixes bound in the key file (or the any-id key) may
  // claim prefixes; otherwise only those bound to it.
  bool allow_unbound_prefixes = false;
  ProtectionPolicy protection;                     // frame protection (suite.hpp)
  std::uint8_t max_version = wire::kVersion;       // highest version offered
  // Memory the sessions' buffers may hold in all (Session::memory_bytes(),
  // summed on every tick; a session admitted since counts kSessionEstimate
  // until then); 0: no limit. At or over it a new session is refused with
  // 'gateway full' (counted in refused_memory; resumes and joins still
  // pass), and on the tick replay buffers are shed, the oldest frame of all
  // sessions first (counted in drop_memory), until the sum is below it.
  std::size_t memory_limit = 0;
  // The interfaces toward the CPEs whose egress is shaped per CPE path
  // (shaper.hpp, DownlinkShaper) at shaper::kShapePermille of the downlink rate the
  // CPE announces (tunneld.downlink, path_rate.hpp); empty: no shaping.
  std::vector<std::string> shape_downlink;
  static constexpr std::size_t kSessionEstimate = 16 * 1024;
};

class Gateway final : public Node {
 public:
  Gateway(boost::asio::io_context& io, GatewayConfig cfg);
  ~Gateway() override;

  std::string_view state() const override { return sessions_.empty() ? "listening" : "serving"; }
  void for_each_session(const std::function<void(const Session&)>& f) const override;
  // The address the first acceptor is bound to (after start()).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // The session of a CPE id, or nullptr.
  const Session* find(std::string_view cpe_id) const;
  // Takes a new key table (SIGHUP): handshakes from now on use it; a
  // session whose id lost its key, or whose prefixes or groups its binding
  // no longer allows, is closed. Returns how many were closed.
  std::size_t replace_keys(std::shared_ptr<const hs::KeyTable> keys);
  std::size_t pending() const { return pending_.size(); }
  // The sessions' buffer memory as last summed (see memory_limit).
  std::size_t memory_bytes() const { return memory_; }

 private:
  void on_start() override;
  void on_stop() override;
  void on_packets(TunPort::Packets pkts, Clock::time_point now) override;
  void on_tick(Clock::time_point now) override;
  void link_failed(Session& s, Link& l, Fault why, std::string_view detail) override;

  using ConnPtr = std::shared_ptr<HandshakeConn>;
  void accept_next(boost::asio::ip::tcp::acceptor& acc);
  void start_handshake(boost::asio::ip::tcp::socket s, std::string peer);
  void on_hello(const ConnPtr& hc, const hs::Nonce& server_nonce, Fault f, const wire::Frame& fr,
                std::string_view detail);
  void refuse(const ConnPtr& hc, Fault why, const std::string& detail, std::uint8_t version);
  // Sends HELLO_ACK and hands the connection to `link`; false when it failed.
  bool accept_link(const ConnPtr& hc, Session& s, Link& l, const hs::Hello& hello, std::uint8_t version,
                   hs::KeyView key, const hs::Nonce& server_nonce, bool resumed, SuiteBytes suite);
  void destroy(std::uint64_t sid, std::string_view why, std::uint64_t& counter);
  // Downlink shaping (gateway_shaping.cpp): the tunneld.downlink built-in,
  // a link that joined (shaped if its path has a rate), a session that ends.
  std::optional<control::BuiltinReply> on_builtin(Session& s, std::string_view topic,
                                                  std::span<const std::uint8_t> body);
  void shape_link(Session& s, Link& l);
  void unshape(std::uint64_t sid);
  struct Shaped {
    std::vector<std::uint64_t> rate;                          // by link index; 0: none announced
    std::vector<std::optional<boost::asio::ip::address>> at;  // by link index: the address shaped for it
    std::vector<std::uint32_t> prio;                          // by link index: its realtime leaf (SO_PRIORITY)
  };
  std::optional<shaper::DownlinkShaper> shaper_;
  std::unordered_map<std::uint64_t, Shaped> shaped_;
  void account_memory();  // sums memory_ and sheds over the limit (on the tick)
  std::size_t memory_ = 0;

  GatewayConfig gcfg_;
  std::optional<PathSetup> paths_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<std::uint8_t> signal_ids_;  // our `signal` endpoints, removed at stop
  CpeTable table_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  void unpend(const ConnPtr& hc);
  void evict_oldest(const std::string* source);  // nullptr: of all sources
  void rearm_accept(boost::asio::ip::tcp::acceptor& acc, std::chrono::milliseconds delay);
  std::map<ConnPtr, std::string> pending_;           // handshake -> its source key
  std::unordered_map<std::string, unsigned> per_source_;
  std::chrono::milliseconds accept_backoff_{0};
  LogLimit refuse_log_{20.0, 50.0};
};

}  // namespace tunnel
