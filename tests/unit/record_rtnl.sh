#!/usr/bin/env bash
# Runs the recorder (record_rtnl.cpp) in a scratch namespace while a path's
# interface comes up, gets addresses, is renumbered, loses carrier and goes
# away; prints recorded_rtnl.hpp. Needs root. Usage: record_rtnl.sh RECORDER
set -euo pipefail
REC=$1
NS="tunneld-paths-rec-$$"
OUT=$(mktemp)
trap 'ip netns del "$NS" 2>/dev/null; rm -f "$OUT"' EXIT
ip netns add "$NS"
ip netns exec "$NS" "$REC" 3 >"$OUT" &
for _ in $(seq 50); do grep -q READY "$OUT" && break; sleep 0.1; done
step() { echo "STEP $*" >>"$OUT.steps"; sleep 0.3; ip -n "$NS" "$@"; sleep 0.3; }
rm -f "$OUT.steps"
step link add wan0 type veth peer name peer0
step addr add 198.51.100.2/24 dev wan0
step link set peer0 up
step link set wan0 up
step addr add 2001:db8:1::2/64 dev wan0
sleep 2.5  # duplicate address detection finishes
step addr del 198.51.100.2/24 dev wan0
step addr add 203.0.113.7/24 dev wan0
step link set peer0 down
step link set peer0 up
step link del wan0
wait
cat <<HDR
// rtnetlink events recorded from kernel $(uname -r) in a scratch namespace
// (recorder: tests/unit/record_rtnl.cpp, record_rtnl.sh), in arrival order.
// Link and IPv6 link-local events are included as the kernel sent them.
// Steps, each followed by its events:
$(sed 's#^STEP #//   ip #' "$OUT.steps")
#pragma once
#include <cstddef>
#include <cstdint>

HDR
grep '^MSG' "$OUT" | while read -r _ i len bytes; do
  printf 'alignas(4) inline const std::uint8_t kRtnl_%d[%d] = {' "$i" "$len"
  printf '%s' "$(tr ' ' '\n' <<<"$bytes" | awk '{printf "%s%d", (NR>1?",":""), $1}')"
  printf '};\n'
done
n=$(grep -c '^MSG' "$OUT")
echo "struct RecordedMsg { const std::uint8_t* data; std::size_t len; };"
printf 'inline const RecordedMsg kRtnlEvents[%d] = {' "$n"
for ((i = 0; i < n; i++)); do printf '%s{kRtnl_%d, sizeof kRtnl_%d}' "$([[ $i -gt 0 ]] && echo ', ')" "$i" "$i"; done
echo '};'
rm -f "$OUT.steps"
