// The in-process test tier's harness: two tunnel endpoints in one process,
// without root. A TUN is an AF_UNIX SOCK_SEQPACKET socketpair (one end for
// the node, which reads and writes whole packets on it like a TUN, the other
// for the test); connections are plain TCP over loopback, through a Relay
// the test can cut or stall.
#pragma once

#include <tunnel/client.hpp>
#include <tunnel/gateway.hpp>
#include <tunnel/keys.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace inproc {

using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

// An in-memory TUN. node_fd() goes to NodeConfig::tun_fd (the node
// duplicates it); the test injects and collects packets on the other end.
class MemTun {
 public:
  MemTun();
  ~MemTun();
  int node_fd() const { return fds_[0]; }
  void inject(const Bytes& pkt);
  // Appends every packet the node has written so far to `out`.
  void drain(std::vector<Bytes>& out);
  // Closes the test's end: the node's next read sees the device gone.
  void vanish();

 private:
  int fds_[2] = {-1, -1};
};

// A host inside the CPE's prefix (10.1.0.0/16) and one beyond the gateway.
inline constexpr const char* kCpeAddr = "10.1.0.5";
inline constexpr const char* kInetAddr = "192.0.2.9";

// An IPv4 UDP packet from `src` to `dst` whose payload starts with `seq`
// (8 bytes, big-endian) and is `payload` bytes long in all.
// `tos`: the IPv4 TOS byte (DSCP << 2), e.g. 0xb8 for EF.
Bytes udp4(const char* src, const char* dst, std::uint64_t seq, std::size_t payload = 64, std::uint8_t tos = 0);
std::uint64_t seq_of(const Bytes& pkt);

// A TCP relay on 127.0.0.1: each accepted connection is joined to a new
// connection to `target`, bytes copied both ways.
class Relay {
 public:
  Relay(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint target);
  ~Relay();
  boost::asio::ip::tcp::endpoint endpoint() const;
  // Resets every connection (both sides see the stream end) and refuses new
  // ones for `refuse` (the relay's listener stays open).
  void cut(std::chrono::milliseconds refuse = 0ms);
  // While stalled, nothing is copied in either direction (a silent blackhole).
  void stall(bool on) { stalled_ = on; }
  // While on, nothing is copied toward the target; the other way flows.
  void stall_to_target(bool on) { stalled_to_target_ = on; }
  std::size_t connections() const { return accepted_; }
  // What an attacker on the path does, once, to the next bytes it copies
  // toward the gateway (`to_target`) or back: flips byte `at` of them
  // (`at` beyond them: the last one), or writes `splice` before them.
  struct Tamper {
    bool armed = false;
    bool to_target = true;
    std::size_t at = 0;
    Bytes splice;      // empty: flip instead
    bool done = false; // set once applied
  };
  void tamper(Tamper t) { tamper_ = std::move(t); tamper_.armed = true; tamper_.done = false; }
  bool tampered() const { return tamper_.done; }
  // Every byte copied in either direction, when capture(true) (a WAN capture).
  void capture(bool on) { capture_on_ = on; }
  const Bytes& captured() const { return captured_; }

 private:
  struct Pair;
  void accept();
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::endpoint target_;
  boost::asio::ip::tcp::acceptor acc_;
  std::list<std::shared_ptr<Pair>> pairs_;
  bool stalled_ = false;
  bool stalled_to_target_ = false;
  Tamper tamper_;
  bool capture_on_ = false;
  Bytes captured_;
  std::chrono::steady_clock::time_point refuse_until_{};
  std::size_t accepted_ = 0;
};

inline constexpr char kKeyHex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
inline constexpr char kDecoyHex[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

// Node settings for tests: plain TCP, no path manager, short timers.
tunnel::NodeConfig test_node(const MemTun& tun, const char* role);
tunnel::GatewayConfig test_gateway(const MemTun& tun);
tunnel::ClientConfig test_client(const MemTun& tun, boost::asio::ip::tcp::endpoint server, std::string id,
                                 const char* prefix);

// What the default logger writes while it lives (the console gets it too),
// one line per event: "LEVEL message".
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // Lines that contain `needle`.
  std::size_t count(std::string_view needle) const;
  std::string text() const;
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs `io` until `done()` or `limit` passes; returns done().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit);
void run_for(boost::asio::io_context& io, std::chrono::milliseconds d);

// A gateway and a CPE ("cpe-1", 10.1.0.0/16) on one loop, the CPE dialling
// through a Relay; `gcfg` and `ccfg` adjust each end's settings before it
// starts. Both are stopped (and the loop run 50 ms) on destruction; a test
// may stop and reset `cpe` earlier.
struct Peers {
  boost::asio::io_context io;
  MemTun gtun, ctun;
  std::unique_ptr<tunnel::Gateway> gw;
  std::unique_ptr<Relay> relay;
  std::unique_ptr<tunnel::Client> cpe;

  explicit Peers(const std::function<void(tunnel::GatewayConfig&)>& gcfg = {},
                 const std::function<void(tunnel::ClientConfig&)>& ccfg = {});
  ~Peers();
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;
  bool connected();
  const tunnel::Session& gs() { return *gw->find("cpe-1"); }  // the gateway's session of cpe-1; must exist
};

// Injects packets [from, from+n) each way: kCpeAddr -> kInetAddr into the
// CPE's TUN, back into the gateway's; sizes vary with the sequence.
void send_both(Peers& p, std::uint64_t from, std::uint64_t n);
// Checks that `got` holds exactly packets 1..n, in order (`dir` names the direction).
void expect_exactly(const std::vector<Bytes>& got, std::uint64_t n, const char* dir);

}  // namespace inproc
