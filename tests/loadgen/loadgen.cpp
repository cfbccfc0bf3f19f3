// tunnel-loadgen: many authenticated CPE sessions against one gateway, over
// loopback, without TUN devices (scripts/scale.sh drives it). Each session is
// the library's own Client (full handshake, sealed frames, heartbeats) on
// plain TCP, without the path manager; all share one end of a socketpair as
// their "TUN", on which nothing is ever written, so the sessions stay idle
// and only heartbeat.
//
//   tunnel-loadgen --server 127.0.0.1:7000 --key-file KEY --count 1000
//                  [--concurrency 200] [--hold 5] [--timeout 120] [--id-prefix lg]
//                  [--first N]   (session i is id P<N+i> with prefix 10.128.0.0 + N+i + 1 /32,
//                                 so several loaders can share one gateway)
//
// At most --concurrency sessions are in their handshake at once. Prints,
// one `key value` a line: established, seconds, handshakes_per_s, then, after
// --hold seconds of heartbeating (or SIGTERM, which ends the hold early),
// still_connected. The exit status is 0 when
// every session was established and still is.
#include <tunnel/client.hpp>
#include <tunnel/keys.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string server = "127.0.0.1:7000";
  std::string key_file;
  unsigned count = 1000;
  unsigned concurrency = 200;
  unsigned hold_s = 5;
  unsigned timeout_s = 120;
  std::string id_prefix = "lg";
  unsigned first = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "tunnel-loadgen: %s\nusage: tunnel-loadgen --server ADDR:PORT --key-file FILE --count N "
                       "[--concurrency N] [--hold S] [--timeout S] [--id-prefix P]\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--server") o.server = v;
    else if (a == "--key-file") o.key_file = v;
    else if (a == "--count") o.count = static_cast<unsigned>(std::stoul(v));
    else if (a == "--concurrency") o.concurrency = static_cast<unsigned>(std::stoul(v));
    else if (a == "--hold") o.hold_s = static_cast<unsigned>(std::stoul(v));
    else if (a == "--timeout") o.timeout_s = static_cast<unsigned>(std::stoul(v));
    else if (a == "--id-prefix") o.id_prefix = v;
    else if (a == "--first") o.first = static_cast<unsigned>(std::stoul(v));
    else usage(("unknown option " + a).c_str());
  }
  if (o.key_file.empty()) usage("--key-file is required");
  if (o.count == 0 || o.count > 60000) usage("--count must be 1..60000");
  if (o.concurrency == 0) usage("--concurrency must be at least 1");
  return o;
}

// Two descriptors a session (its socket and its "TUN" duplicate) and some spare.
void raise_nofile(unsigned count) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  const rlim_t want = rlim_t{count} * 2 + 256;
  if (r.rlim_cur >= want) return;
  r.rlim_cur = std::min(want, r.rlim_max);
  if (r.rlim_max < want) {
    r.rlim_max = want;  // allowed as root
    r.rlim_cur = want;
  }
  if (setrlimit(RLIMIT_NOFILE, &r) != 0)
    std::fprintf(stderr, "tunnel-loadgen: cannot raise RLIMIT_NOFILE to %llu: %s\n",
                 static_cast<unsigned long long>(want), std::strerror(errno));
}

asio::ip::tcp::endpoint endpoint_of(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) usage("--server needs ADDR:PORT");
  std::string host = s.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {asio::ip::make_address(host), static_cast<unsigned short>(std::stoul(s.substr(colon + 1)))};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  raise_nofile(o.count);
  spdlog::set_level(spdlog::level::err);
  int tun[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tun) != 0) {
    std::perror("socketpair");
    return 1;
  }
  const tunnel::hs::Key key = tunnel::hs::load_key_file(o.key_file);
  const auto server = endpoint_of(o.server);

  asio::io_context io;
  std::vector<std::unique_ptr<tunnel::Client>> clients;
  clients.reserve(o.count);
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::seconds(o.timeout_s);
  Clock::time_point t_all{}, hold_until{};
  unsigned connected = 0, still = 0;
  bool done = false;

  const auto start_one = [&](unsigned i) {
    tunnel::ClientConfig c;
    c.node.tun_fd = tun[0];
    c.node.mptcp = false;
    c.node.path_manager = false;
    c.node.port.batch = 1;  // nothing is read from the shared "TUN": one slot, not 4 MiB a client
    c.servers = {server};
    i += o.first;
    c.id = o.id_prefix + std::to_string(i);
    // A /32 of its own each (10.128.0.0/9 holds 8 million).
    const std::uint32_t a = 0x0a800000u + i + 1;
    c.prefixes = {tunnel::parse_prefix(fmt::format("{}.{}.{}.{}/32", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255))};
    c.key = key.clone();
    c.connect_timeout = std::chrono::milliseconds(10000);
    c.reconnect_max = std::chrono::milliseconds(2000);
    auto cl = std::make_unique<tunnel::Client>(io, std::move(c));
    cl->start();
    clients.push_back(std::move(cl));
  };

  bool end_hold = false;
  asio::signal_set sigs(io, SIGTERM, SIGINT);
  sigs.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) end_hold = true;
  });
  asio::steady_timer timer(io);
  std::function<void()> step = [&] {
    const auto now = Clock::now();
    connected = 0;
    for (const auto& c : clients) connected += c->session().connected() ? 1 : 0;
    if (t_all == Clock::time_point{}) {
      while (clients.size() < o.count && clients.size() - connected < o.concurrency) start_one(clients.size());
      if (connected == o.count) {
        t_all = now;
        hold_until = now + std::chrono::seconds(o.hold_s);
      }
    }
    if ((t_all != Clock::time_point{} && (now >= hold_until || end_hold)) || now >= deadline || end_hold) {
      sigs.cancel();
      still = connected;
      done = true;
      for (auto& c : clients) c->stop();
      return;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) step();
    });
  };
  asio::post(io, step);
  io.run();
  (void)done;

  const auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const bool all = t_all != Clock::time_point{};
  const double s = secs((all ? t_all : Clock::now()) - t0);
  std::printf("established %u\nseconds %.3f\nhandshakes_per_s %.0f\nstill_connected %u\n", all ? o.count : connected,
              s, (all ? o.count : connected) / s, still);
  clients.clear();
  ::close(tun[0]);
  ::close(tun[1]);
  return all && still == o.count ? 0 : 1;
}
