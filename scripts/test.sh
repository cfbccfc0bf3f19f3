#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Debian packages it
# needs, builds, runs every test under ctest (unit, netlink replay, TUN,
# namespace integration), builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/) and runs the ctest suite there
# too, less the tests labelled no-sanitizer (namespace tests that measure
# time and rates), then fuzzes the codecs and parsers for a bounded time.
# Namespace tests need root; without it they are reported as skipped.
#   sudo ./scripts/test.sh
# Environment:
#   FUZZ_SECONDS=15   seconds per fuzz target (scripts/fuzz.sh)
#   SANITIZERS=0      skip the sanitizer build and run
#   CTEST_ARGS=...    extra ctest arguments for both runs (e.g. -LE netns)
# The last line counts every ctest test of both runs and every fuzz target:
#   test: N passed, F failed, K skipped
# and the exit status is non-zero when F > 0.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/install-deps.sh" || exit 1
"$ROOT/scripts/build.sh" || exit 1
"$ROOT/kernel-config/check.sh" || echo "test: kernel lacks something above; dependent tests will skip or fail"

PASSED=0 FAILED=0 SKIPPED=0
# run_ctest DIR LABEL: runs ctest in DIR and adds its counts to the totals.
# Further arguments go to ctest.
run_ctest() {
  local dir=$1 label=$2 log total failed skipped
  shift 2
  log="$dir/ctest.log"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure --timeout 600 "$@" ${CTEST_ARGS:-}) 2>&1 | tee "$log"
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\2/p' "$log")
  failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log")
  skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
  if [[ -z $total ]]; then  # ctest did not get as far as its summary
    echo "test: $label: ctest gave no summary"
    FAILED=$((FAILED + 1))
    return
  fi
  echo "test: $label: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
  PASSED=$((PASSED + total - failed - skipped)) FAILED=$((FAILED + failed)) SKIPPED=$((SKIPPED + skipped))
}

run_ctest build "normal build"

if [[ ${SANITIZERS:-1} != 0 ]]; then
  # Everything ctest runs, nothing else (no header check, no benchmarks);
  # -O1 -g1: quicker to build than -O2 -g, still line numbers in reports.
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=None -DTUNNEL_WERROR=ON -DTUNNEL_HEADER_CHECK=OFF \
       -DCMAKE_CXX_FLAGS="-O1 -g1 $san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null &&
     cmake --build build-asan -j"$(nproc)" >/dev/null; then
    # Tests see TUNNEL_SANITIZED=1 (e.g. to allow for slower binaries).
    export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    TUNNEL_SANITIZED=1 run_ctest build-asan "ASan+UBSan build" -LE no-sanitizer
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    echo "test: the sanitizer build failed"
    FAILED=$((FAILED + 1))
  fi
fi

# Each fuzz target that runs its time without a crash counts as one test.
fuzz_log="build/fuzz.log"
"$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-15}" 2>&1 | tee "$fuzz_log"
fuzz_ok=$(grep -c '^fuzz: .* without a crash$' "$fuzz_log" || true)
fuzz_targets=$(sed -n 's/^TARGETS=(\(.*\))$/\1/p' "$ROOT/scripts/fuzz.sh" | wc -w)
PASSED=$((PASSED + fuzz_ok)) FAILED=$((FAILED + fuzz_targets - fuzz_ok))

echo "test: $PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
