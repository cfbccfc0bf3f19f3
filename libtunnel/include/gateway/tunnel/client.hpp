// The CPE's role (on the Node skeleton, node.hpp): one session with the
// gateway, whose links it dials (link 0 opens or resumes the session; the
// others join it), reconnecting each with exponential backoff and jitter
// when its connection breaks; the WAN paths followed through rtnetlink
// (client_paths.hpp).
//
// The gateway may have an address per family (`servers`): link 0 dials the
// first whose family some path can reach, on a dual-stack socket when there
// are two, so that the gateway's announcement of its other address gives a
// path of the other family its subflow.
//
// Handshake, client side (docs/protocol.md, "Handshake"):
//   1. connect within connect_timeout;
//   2. read CHALLENGE (any version we speak), choose the highest version
//      both speak;
//   3. send HELLO in it: id, prefixes, the session and link to resume or
//      join, the last dsn received on that link, the proof;
//   4. read HELLO_ACK (or ERROR), check the gateway's proof, and hand the
//      connection to the link. A link 0 the gateway did not resume starts a
//      new session: what was buffered for the old one is dropped (counted).
#pragma once

#include <tunnel/client_paths.hpp>
#include <tunnel/handshake.hpp>
#include <tunnel/handshake_conn.hpp>
#include <tunnel/node.hpp>
#include <tunnel/path_setup.hpp>
#include <tunnel/suite.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <random>
#include <vector>

namespace tunnel {

struct ClientConfig {
  NodeConfig node;
  std::vector<boost::asio::ip::tcp::endpoint> servers;  // the gateway: one or two (one per family)
  std::string id;                              // this CPE's id
  std::vector<Prefix> prefixes;                // inner prefixes announced to the gateway
  std::vector<std::string> groups;             // control message groups announced (version 4)
  std::vector<PathSpec> paths;                 // WAN paths (in-kernel endpoints); empty: none managed
  hs::Key key;                                 // empty: no authentication
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_max{1000};
  std::chrono::milliseconds path_retry{2000};
  unsigned links = 1;                          // links to open, 1..hs::kMaxLinks (without managed paths)
  // With managed paths: a realtime link per path (link 1 + i for path i), a
  // plain TCP connection from the path's address to the gateway's address
  // of that family, open while the path is up.
  bool realtime_links = true;
  std::uint8_t max_version = wire::kVersion;   // highest version to speak
  ProtectionPolicy protection;                 // frame protection (suite.hpp)
};

class Client final : public Node {
 public:
  Client(boost::asio::io_context& io, ClientConfig cfg);
  ~Client() override;

  std::string_view state() const override { return conns_.empty() ? "starting" : conns_[0]->state; }
  void for_each_session(const std::function<void(const Session&)>& f) const override { f(*session_); }
  Session& session() { return *session_; }
  const std::string& gateway_id() const { return gateway_id_; }
  // The WAN paths (nullptr without a path manager).
  const ClientPaths* paths() const { return paths_ ? &*paths_ : nullptr; }
  // The gateway address link 0 uses (or last tried).
  const boost::asio::ip::tcp::endpoint& server() const { return ccfg_.servers[server_]; }
  // Control messages: the peer is the gateway ("gateway" until its id is known).
  std::string peer_name(const Session&) const override { return gateway_id_.empty() ? "gateway" : gateway_id_; }
  std::uint8_t version() const { return version_; }
  // Sessions ended by the gateway (CLOSE) or not resumed in time.
  const NodeCounters& client_counters() const { return dc_; }

 private:
  struct Connector {
    explicit Connector(boost::asio::io_context& io) : retry(io), timer(io) {}
    std::optional<boost::asio::ip::tcp::socket> sock;
    std::shared_ptr<HandshakeConn> hc;
    boost::asio::steady_timer retry, timer;
    boost::asio::ip::tcp::endpoint target;  // the gateway address this link dials
    int attempts = 0;
    const char* state = "starting";
    // Abandons whatever is under way: the retry, the attempt, the handshake.
    void abandon() {
      retry.cancel();
      timer.cancel();
      if (sock) sock->close();
      if (hc) hc->close();
      hc.reset();
    }
  };

  void on_start() override;
  void on_stop() override;
  void on_packets(TunPort::Packets pkts, Clock::time_point now) override;
  void on_tick(Clock::time_point now) override;
  void on_stats() override;
  void on_subflow_event(Link& l) override;
  void link_failed(Session& s, Link& l, Fault why, std::string_view detail) override;

  void connect(unsigned i);
  void on_challenge(unsigned i, Fault f, const wire::Frame& fr, std::string_view detail);
  void on_hello_ack(unsigned i, std::uint8_t v, const hs::Nonce& cn, const hs::Nonce& sn, Fault f,
                    const wire::Frame& fr, std::string_view detail);
  // Logs the handshake's failure and schedules a retry.
  void handshake_failed(unsigned i, Fault f, std::string_view detail);
  void schedule_retry(unsigned i, std::string_view why);
  void restart_joins();
  // Tells a new session's gateway the downlink rate of each path with a
  // realtime link (tunneld.downlink, for its downlink shaping).
  void announce_downlink();
  std::size_t pick_server() const;
  void path_changed(std::size_t path, bool up);
  void path_stranded(std::size_t path);
  // Link `i` is the realtime link of a managed path.
  bool path_link(unsigned i) const { return i > 0 && paths_ && ccfg_.realtime_links; }

  ClientConfig ccfg_;
  std::unique_ptr<Session> session_;
  std::vector<std::unique_ptr<Connector>> conns_;
  std::optional<ClientPaths> paths_;
  std::size_t server_ = 0;                     // index in ccfg_.servers
  std::string gateway_id_;
  std::uint8_t version_ = 0;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace tunnel
