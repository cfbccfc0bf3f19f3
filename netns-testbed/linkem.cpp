// linkem: a link emulator for the testbed, since the kernel has no sch_netem.
// Forwards frames between two interfaces with AF_PACKET, holding each in a
// timed FIFO for its direction's delay plus uniform jitter (never reordering:
// a frame leaves no earlier than the one before it), and drops a configured
// fraction. Rate stays with tbf on the outgoing interface. Parameters come
// from a file, re-read on SIGHUP, so they change without a restart:
//
//   linkem --a IF_A --b IF_B --params FILE [--max-queue N]
//   FILE: lines "ab delay_us jitter_us loss_ppm" and "ba delay_us jitter_us loss_ppm"
//         (ab: frames received on A, sent on B); "ab blackhole" drops all.
//
// PACKET_VNET_HDR keeps GSO frames whole across the hop. On SIGUSR1 it prints
// counters to stderr. Exits on SIGTERM/SIGINT.
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_reload = 1, g_stop = 0, g_dump = 0;

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Params {
  std::int64_t delay_ns = 0, jitter_ns = 0;
  std::uint32_t loss_ppm = 0;
  bool blackhole = false;
};

struct Frame {
  std::int64_t due;
  std::vector<std::uint8_t> bytes;
};

struct Direction {
  const char* name = "";
  int in = -1, out = -1;
  Params p;
  std::deque<Frame> q;
  std::int64_t last_due = 0;
  std::uint64_t rx = 0, tx = 0, lost = 0, overflow = 0, send_err = 0;
};

int open_if(const char* ifname) {
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) { perror("linkem: socket"); std::exit(1); }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname));
  if (!sll.sll_ifindex) { std::fprintf(stderr, "linkem: no interface %s\n", ifname); std::exit(1); }
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
    perror("linkem: set up packet socket");
    std::exit(1);
  }
  // Drops in the emulator's own socket would be loss nobody configured: force
  // 4 MiB past net.core.{r,w}mem_max (linkem runs as root in the testbed).
  int buf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  return fd;
}

void load(const std::string& file, Direction& ab, Direction& ba) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string dir, first;
    in >> dir >> first;
    Direction* d = dir == "ab" ? &ab : dir == "ba" ? &ba : nullptr;
    if (!d) continue;
    Params p;
    if (first == "blackhole") {
      p.blackhole = true;
    } else {
      long long delay_us = std::atoll(first.c_str()), jitter_us = 0;
      unsigned long loss = 0;
      in >> jitter_us >> loss;
      p.delay_ns = delay_us * 1000;
      p.jitter_ns = jitter_us * 1000;
      p.loss_ppm = static_cast<std::uint32_t>(loss);
    }
    d->p = p;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string a, b, params;
  std::size_t max_queue = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--a") a = argv[i + 1];
    else if (k == "--b") b = argv[i + 1];
    else if (k == "--params") params = argv[i + 1];
    else if (k == "--max-queue") max_queue = std::strtoul(argv[i + 1], nullptr, 10);
    else { std::fprintf(stderr, "linkem: unknown option %s\n", k.c_str()); return 2; }
  }
  if (a.empty() || b.empty() || params.empty()) {
    std::fprintf(stderr, "usage: linkem --a IF --b IF --params FILE [--max-queue N]\n");
    return 2;
  }
  std::signal(SIGHUP, [](int) { g_reload = 1; });
  std::signal(SIGUSR1, [](int) { g_dump = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });

  const int fa = open_if(a.c_str()), fb = open_if(b.c_str());
  Direction ab, ba;
  ab.name = "ab";
  ab.in = fa;
  ab.out = fb;
  ba.name = "ba";
  ba.in = fb;
  ba.out = fa;
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::uint8_t> buf(10 /* virtio_net_hdr */ + 65536 + 64);

  auto receive = [&](Direction& d) {
    for (int i = 0; i < 256; ++i) {
      const ssize_t n = recv(d.in, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      ++d.rx;
      if (d.p.blackhole || (d.p.loss_ppm && rng() % 1000000 < d.p.loss_ppm)) { ++d.lost; continue; }
      if (d.q.size() >= max_queue) { ++d.overflow; continue; }
      std::int64_t delay = d.p.delay_ns;
      if (d.p.jitter_ns) {
        delay += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * d.p.jitter_ns + 1)) - d.p.jitter_ns;
        if (delay < 0) delay = 0;
      }
      const std::int64_t due = std::max(now_ns() + delay, d.last_due);
      d.last_due = due;
      d.q.push_back({due, std::vector<std::uint8_t>(buf.begin(), buf.begin() + n)});
    }
  };
  auto release = [&](Direction& d, std::int64_t now) {
    while (!d.q.empty() && d.q.front().due <= now) {
      const auto& f = d.q.front().bytes;
      if (send(d.out, f.data(), f.size(), 0) == static_cast<ssize_t>(f.size())) ++d.tx;
      else ++d.send_err;
      d.q.pop_front();
    }
  };

  while (!g_stop) {
    if (g_reload) {
      g_reload = 0;
      load(params, ab, ba);
    }
    if (g_dump) {
      g_dump = 0;
      for (auto* d : {&ab, &ba})
        std::fprintf(stderr, "%s rx %llu tx %llu lost %llu overflow %llu send_err %llu queued %zu\n", d->name,
                     (unsigned long long)d->rx, (unsigned long long)d->tx, (unsigned long long)d->lost,
                     (unsigned long long)d->overflow, (unsigned long long)d->send_err, d->q.size());
    }
    std::int64_t now = now_ns();
    release(ab, now);
    release(ba, now);
    std::int64_t next = now + 100000000;  // wake at least every 100 ms
    for (auto* d : {&ab, &ba})
      if (!d->q.empty()) next = std::min(next, d->q.front().due);
    pollfd p[2] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}};
    const std::int64_t wait = std::max<std::int64_t>(0, next - now);
    timespec ts{static_cast<time_t>(wait / 1000000000), static_cast<long>(wait % 1000000000)};
    if (ppoll(p, 2, &ts, nullptr) > 0) {
      if (p[0].revents & POLLIN) receive(ab);
      if (p[1].revents & POLLIN) receive(ba);
    }
  }
  return 0;
}
