#!/usr/bin/env bash
# Builds the libFuzzer target for the frame codec with clang and runs it for a
# bounded time (default 60 s). A crash or an invariant failure exits non-zero
# and leaves the input in build-fuzz/crash-*.
#   ./scripts/fuzz.sh [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=${1:-60}
cd "$ROOT"
CXX=clang++ cmake -S . -B build-fuzz -DTUNNEL_ONLY_WIRE=ON -DTUNNEL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_wire >/dev/null
mkdir -p build-fuzz/corpus
cd build-fuzz
./tests/fuzz/fuzz_wire -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 corpus 2>&1 | tail -n 8
echo "fuzz: fuzz_wire ran ${SECS}s without a crash"
