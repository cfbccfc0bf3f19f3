// Micro benchmark of frame protection (seal.hpp): seal + open of one frame,
// per cipher and protection mode, against a plain copy of the same bytes as
// the floor. Not a test; build and run it by hand:
//   cmake --build build --target seal_bench && build/tests/seal_bench
#include <tunnel/keys.hpp>
#include <tunnel/seal.hpp>
#include <tunnel/wire.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

namespace {
using namespace tunnel;

void run(benchmark::State& state, seal::Cipher cipher, seal::Protection protection) {
  const auto psk = keys::parse_key(std::string(64, 'a'));
  const seal::Suite suite{4, cipher, protection};
  seal::Nonce a{}, b{};
  a.fill(1);
  b.fill(2);
  auto tx = seal::make_link_crypto(psk, a, b, seal::Role::cpe, suite);
  auto rx = seal::make_link_crypto(psk, a, b, seal::Role::gateway, suite);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> f(wire::kHeaderSize + n + seal::kTagSize, 0x5a);
  for (auto _ : state) {
    wire::encode_header(f.data(), wire::FrameType::data, 0, static_cast<std::uint32_t>(n));
    if (tx.sealer.seal(f) != seal::Status::ok) state.SkipWithError("seal failed");
    if (rx.opener.open(f) != seal::Status::ok) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(f.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_Copy(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> src(n, 1), dst(n);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_ChaChaEncrypt(benchmark::State& s) { run(s, seal::Cipher::chacha20_poly1305, seal::Protection::encrypt); }
void BM_ChaChaIntegrity(benchmark::State& s) {
  run(s, seal::Cipher::chacha20_poly1305, seal::Protection::integrity_only);
}
void BM_AesGcmEncrypt(benchmark::State& s) { run(s, seal::Cipher::aes_256_gcm, seal::Protection::encrypt); }
void BM_AesGcmIntegrity(benchmark::State& s) { run(s, seal::Cipher::aes_256_gcm, seal::Protection::integrity_only); }

}  // namespace

BENCHMARK(BM_Copy)->Arg(1400);
BENCHMARK(BM_ChaChaEncrypt)->Arg(64)->Arg(1400)->Arg(8192);
BENCHMARK(BM_ChaChaIntegrity)->Arg(1400);
BENCHMARK(BM_AesGcmEncrypt)->Arg(64)->Arg(1400)->Arg(8192);
BENCHMARK(BM_AesGcmIntegrity)->Arg(1400);
BENCHMARK_MAIN();
