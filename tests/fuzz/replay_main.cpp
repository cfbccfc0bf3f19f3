// Runs a fuzz entry point on N pseudo-random inputs, for compilers without
// libFuzzer. Half of them are random bytes; the other half start from
// well-formed inputs with a few bytes flipped: the target's own
// tunnel_fuzz_seed when it defines one, else a stream of DATA frames.
#include <tunnel/wire.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Appends a well-formed input to `out`; optional (weak).
extern "C" void tunnel_fuzz_seed(std::mt19937_64& rng, std::vector<std::uint8_t>& out) __attribute__((weak));

namespace {

void data_frames(std::mt19937_64& rng, std::vector<std::uint8_t>& buf) {
  for (int f = 0; f < 1 + int(rng() % 4); ++f) {  // DATA frames of one packet each
    const std::size_t plen = 20 + rng() % 200;
    const std::size_t at = buf.size();
    buf.resize(at + tunnel::wire::kDataHeaderSize + plen, 0);
    tunnel::wire::encode_data_header(&buf[at], rng(), plen);
    std::uint8_t* ip = &buf[at + tunnel::wire::kDataHeaderSize];
    ip[0] = 0x45;
    ip[2] = static_cast<std::uint8_t>(plen >> 8);
    ip[3] = static_cast<std::uint8_t>(plen);
    ip[9] = 17;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100000;
  std::mt19937_64 rng(12345);
  std::vector<std::uint8_t> buf;
  for (long i = 0; i < n; ++i) {
    buf.clear();
    if (i % 2) {
      if (tunnel_fuzz_seed)
        tunnel_fuzz_seed(rng, buf);
      else
        data_frames(rng, buf);
      // Unchanged now and then, so the accepting paths run too.
      if (!buf.empty() && i % 8 != 1)
        for (int k = 0; k < 1 + int(rng() % 4); ++k) buf[rng() % buf.size()] ^= static_cast<std::uint8_t>(rng());
    } else {
      buf.resize(rng() % 300);
      for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
    }
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("%s: %ld inputs, no invariant broken\n", argv[0], n);
  return 0;
}
