#!/usr/bin/env bash
# Builds the libFuzzer targets for the frame codec (fuzz_wire: the parser and
# DATA record reader; fuzz_records: the header compression round trip) with
# clang and runs each for a bounded time (default 60 s). A crash or an
# invariant failure exits non-zero and leaves the input in build-fuzz/crash-*.
#   ./scripts/fuzz.sh [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=${1:-60}
cd "$ROOT"
CXX=clang++ cmake -S . -B build-fuzz -DTUNNEL_ONLY_WIRE=ON -DTUNNEL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_wire fuzz_records >/dev/null
cd build-fuzz
for t in fuzz_wire fuzz_records; do
  mkdir -p "corpus-$t"
  ./tests/fuzz/$t -max_total_time="$SECS" -max_len=8192 -print_final_stats=1 "corpus-$t" 2>&1 | tail -n 5
  echo "fuzz: $t ran ${SECS}s without a crash"
done
