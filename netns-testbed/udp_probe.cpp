// udp-probe: a UDP sender and receiver that can tell whether every datagram
// arrived exactly once, intact and in order, and how long the longest silence
// was. Sender and receiver share CLOCK_MONOTONIC (same host, other namespace),
// so one-way latency is measured directly.
//
//   udp-probe send --to ADDR:PORT --count N [--rate PPS] [--size MIN[-MAX]] [--seed S]
//   udp-probe recv --bind ADDR:PORT --count N [--idle-timeout MS] [--max-time MS] [--seed S]
//
// Payload: magic(4) seq(4) send_time_ns(8) length(2) then bytes derived from
// (seed, seq), so the receiver verifies every byte without coordination.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::uint32_t kMagic = 0x55445031;  // "UDP1"
constexpr std::size_t kHdr = 18;
constexpr std::size_t kMaxSize = 65507;

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

// splitmix64: a small, fast, well-distributed generator.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void fill(std::uint8_t* p, std::size_t n, std::uint64_t seed, std::uint32_t seq) {
  std::uint64_t s = mix(seed * 1000003ull + seq);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) s = mix(s);
    p[i] = static_cast<std::uint8_t>(s >> (8 * (i % 8)));
  }
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "udp-probe: %s\n", m.c_str());
  std::exit(2);
}

bool parse_addr(const std::string& s, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    auto c = s.find("]:");
    if (c == std::string::npos) return false;
    host = s.substr(1, c - 1);
    port = s.substr(c + 2);
  } else {
    auto c = s.rfind(':');
    if (c == std::string::npos) return false;
    host = s.substr(0, c);
    port = s.substr(c + 1);
  }
  const int p = std::atoi(port.c_str());
  if (p <= 0 || p > 65535) return false;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(p));
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(p));
    len = sizeof *v6;
    return true;
  }
  return false;
}

struct Args {
  std::string mode, addr;
  long count = 1000, rate = 0, idle_ms = 3000, max_ms = 60000;
  std::size_t min_size = 64, max_size = 64;
  std::uint64_t seed = 1;
};

Args parse(int argc, char** argv) {
  if (argc < 2) die("usage: udp-probe send|recv ... (see the source header)");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--to" || k == "--bind") a.addr = v;
    else if (k == "--count") a.count = std::atol(v.c_str());
    else if (k == "--rate") a.rate = std::atol(v.c_str());
    else if (k == "--idle-timeout") a.idle_ms = std::atol(v.c_str());
    else if (k == "--max-time") a.max_ms = std::atol(v.c_str());
    else if (k == "--seed") a.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--size") {
      auto d = v.find('-');
      a.min_size = std::strtoul(v.c_str(), nullptr, 10);
      a.max_size = d == std::string::npos ? a.min_size : std::strtoul(v.c_str() + d + 1, nullptr, 10);
    } else die("unknown option " + k);
  }
  if (a.count <= 0 || a.count > 100000000) die("--count must be 1..1e8");
  if (a.min_size < kHdr || a.max_size > kMaxSize || a.min_size > a.max_size)
    die("--size must be within 18..65507");
  return a;
}

int do_send(const Args& a) {
  sockaddr_storage to;
  socklen_t tolen;
  if (!parse_addr(a.addr, to, tolen)) die("bad --to " + a.addr);
  const int fd = socket(to.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  std::vector<std::uint8_t> buf(kMaxSize);
  const std::uint64_t start = now_ns();
  long sent = 0, errors = 0;
  for (long i = 0; i < a.count; ++i) {
    if (a.rate > 0) {
      const std::uint64_t due = start + std::uint64_t(i) * 1000000000ull / std::uint64_t(a.rate);
      for (std::uint64_t t = now_ns(); t < due; t = now_ns()) {
        timespec ts{0, static_cast<long>(std::min<std::uint64_t>(due - t, 999999999))};
        nanosleep(&ts, nullptr);
      }
    }
    const auto seq = static_cast<std::uint32_t>(i);
    const std::size_t span = a.max_size - a.min_size + 1;
    const std::size_t len = a.min_size + (span > 1 ? mix(a.seed ^ (seq * 7919ull)) % span : 0);
    const std::uint32_t m = htonl(kMagic), s = htonl(seq);
    const std::uint64_t t = now_ns();
    const std::uint16_t l = htons(static_cast<std::uint16_t>(len));
    std::memcpy(&buf[0], &m, 4);
    std::memcpy(&buf[4], &s, 4);
    std::memcpy(&buf[8], &t, 8);
    std::memcpy(&buf[16], &l, 2);
    fill(&buf[kHdr], len - kHdr, a.seed, seq);
    if (sendto(fd, buf.data(), len, 0, reinterpret_cast<sockaddr*>(&to), tolen) == static_cast<ssize_t>(len)) ++sent;
    else ++errors;
  }
  const double secs = double(now_ns() - start) / 1e9;
  std::printf("{\"sent\":%ld,\"send_errors\":%ld,\"seconds\":%.3f}\n", sent, errors, secs);
  close(fd);
  return 0;
}

int do_recv(const Args& a) {
  sockaddr_storage bind_to;
  socklen_t blen;
  if (!parse_addr(a.addr, bind_to, blen)) die("bad --bind " + a.addr);
  const int fd = socket(bind_to.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  // The probe measures the tunnel, not its own socket: a replay burst after a
  // resume must not overflow a receive buffer capped at net.core.rmem_max
  // (212992 on a fresh machine), so force 8 MiB as root, ask otherwise.
  int rcvbuf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, reinterpret_cast<sockaddr*>(&bind_to), blen) < 0) die("bind " + a.addr + ": " + std::strerror(errno));
  std::printf("{\"ready\":true}\n");
  std::fflush(stdout);

  std::vector<std::uint8_t> seen(static_cast<std::size_t>(a.count), 0);
  std::vector<std::uint8_t> buf(kMaxSize + 1), want(kMaxSize);
  std::vector<double> lat;
  lat.reserve(static_cast<std::size_t>(a.count));
  long received = 0, unique = 0, dups = 0, corrupt = 0, reordered = 0, foreign = 0;
  long long bytes = 0;
  std::int64_t highest = -1;
  std::uint64_t last_rx = 0, first_rx = 0, max_gap = 0;
  const std::uint64_t t0 = now_ns();
  while (unique < a.count) {
    const std::uint64_t now = now_ns();
    if (now - t0 > std::uint64_t(a.max_ms) * 1000000ull) break;
    pollfd p{fd, POLLIN, 0};
    const int wait = received ? static_cast<int>(a.idle_ms) : static_cast<int>(a.max_ms);
    if (poll(&p, 1, wait) <= 0) break;
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) continue;
    const std::uint64_t rx = now_ns();
    std::uint32_t m, s;
    std::uint64_t st;
    std::uint16_t l;
    if (static_cast<std::size_t>(n) < kHdr) { ++foreign; continue; }
    std::memcpy(&m, &buf[0], 4);
    std::memcpy(&s, &buf[4], 4);
    std::memcpy(&st, &buf[8], 8);
    std::memcpy(&l, &buf[16], 2);
    if (ntohl(m) != kMagic) { ++foreign; continue; }
    ++received;
    bytes += n;
    const std::uint32_t seq = ntohl(s);
    fill(want.data(), static_cast<std::size_t>(n) - kHdr, a.seed, seq);
    if (ntohs(l) != n || seq >= static_cast<std::uint32_t>(a.count) ||
        std::memcmp(want.data(), &buf[kHdr], static_cast<std::size_t>(n) - kHdr) != 0) {
      ++corrupt;
      continue;
    }
    if (seen[seq]) { ++dups; continue; }
    seen[seq] = 1;
    ++unique;
    if (static_cast<std::int64_t>(seq) < highest) ++reordered;
    highest = std::max<std::int64_t>(highest, seq);
    if (last_rx) max_gap = std::max(max_gap, rx - last_rx);
    else first_rx = rx;
    last_rx = rx;
    lat.push_back(double(rx - st) / 1e6);
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, std::size_t(q * double(lat.size())))]; };
  const double span_s = last_rx > first_rx ? double(last_rx - first_rx) / 1e9 : 0.0;
  std::printf(
      "{\"expected\":%ld,\"received\":%ld,\"unique\":%ld,\"duplicates\":%ld,\"corrupt\":%ld,\"reordered\":%ld,"
      "\"lost\":%ld,\"foreign\":%ld,\"bytes\":%lld,\"seconds\":%.3f,\"max_gap_ms\":%.1f,\"lat_p50_ms\":%.2f,"
      "\"lat_p99_ms\":%.2f,\"lat_max_ms\":%.2f}\n",
      a.count, received, unique, dups, corrupt, reordered, a.count - unique, foreign, bytes, span_s,
      double(max_gap) / 1e6, pct(0.5), pct(0.99), lat.empty() ? 0.0 : lat.back());
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.mode == "send") return do_send(a);
  if (a.mode == "recv") return do_recv(a);
  die("mode must be send or recv");
}
