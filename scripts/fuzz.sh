#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the pure codecs and parsers only:
# TUNNEL_ONLY_WIRE) and runs each for a bounded time:
#   fuzz_wire       the frame parser and DATA record reader
#   fuzz_records    the header compression round trip
#   fuzz_handshake  the CHALLENGE / HELLO / HELLO_ACK decoders
#   fuzz_netlink    the mptcp_pm and rtnetlink reply parsers
#   fuzz_control    the control frame bodies (message, result, receipt)
#   fuzz_classify   packet inspection, class rules, path rates, realtime frame bodies
# A crash or an invariant failure exits non-zero and leaves the input in
# build-fuzz/crash-*. Corpora persist in build-fuzz/corpus-<target>.
#   ./scripts/fuzz.sh [SECONDS]       seconds per target; default FUZZ_SECONDS or 15
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=${1:-${FUZZ_SECONDS:-15}}
TARGETS=(fuzz_wire fuzz_records fuzz_handshake fuzz_netlink fuzz_control fuzz_classify)
cd "$ROOT"
CXX=clang++ cmake -S . -B build-fuzz -DTUNNEL_ONLY_WIRE=ON -DTUNNEL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build build-fuzz -j"$(nproc)" --target "${TARGETS[@]}" >/dev/null
cd build-fuzz
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus-$t"
  ./tests/fuzz/$t -max_total_time="$SECS" -max_len=8192 -print_final_stats=1 "corpus-$t" 2>&1 | tail -n 5
  echo "fuzz: $t ran ${SECS}s without a crash"
done
