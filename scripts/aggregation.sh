#!/usr/bin/env bash
# Aggregation benchmark on the hybrid profile (DSL 20/5 Mbit/s 10 ms, LTE
# 30/10 Mbit/s 40+-10 ms 0.1% loss), in one run:
#   - goodput through the tunnel at 120% of the paths' summed rate, divided by
#     that sum, downlink and uplink (iperf3 UDP, 1200-byte datagrams, the
#     first 3 s omitted as ramp-up);
#   - one-way latency of a 200 packets/s probe through the tunnel while
#     iperf3 loads it to 50%, against the same probe over the faster path
#     alone (DSL: the direct route, no tunnel, no load); p50 and p99.
# Not a test: it prints numbers. Needs root and a build.
#
#   sudo ./scripts/aggregation.sh [--seconds N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=10
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
((SECS >= 5 && SECS <= 60)) || { echo "aggregation: --seconds must be 5..60" >&2; exit 2; }
TUNNELD="$ROOT/build/tunneld/tunneld"
PROBE="$ROOT/build/netns-testbed/udp-probe"
export LINKEM="$ROOT/build/netns-testbed/linkem"
[[ -x $TUNNELD && -x $PROBE && -x $LINKEM ]] || { echo "aggregation: build first (scripts/build.sh)" >&2; exit 1; }
P="agg$((RANDOM % 100))"
TB="$ROOT/netns-testbed/testbed --prefix $P"
WORK=$(mktemp -d /tmp/tunneld-agg.XXXXXX)
source "$ROOT/scripts/lib-tunnel.sh"
cleanup() { $TB down >/dev/null 2>&1 || true; rm -rf "$WORK"; rmem_restore; }
trap cleanup EXIT
rmem_raise

$TB up hybrid >/dev/null
tunnel_up agg --log-level warn
$TB exec inet iperf3 -s -B 198.18.20.2 -p 5201 >/dev/null 2>&1 &
$TB exec lan iperf3 -s -B 198.18.10.2 -p 5202 >/dev/null 2>&1 &
for _ in $(seq 50); do
  $TB exec inet ss -Hltn | grep -q ':5201' && $TB exec lan ss -Hltn | grep -q ':5202' && break
  sleep 0.1
done

# iperf NS ADDR PORT RATE SECS: received goodput in Mbit/s (first 3 s omitted).
iperf() {
  $TB exec "$1" timeout $(($5 + 20)) iperf3 -c "$2" -p "$3" -u -b "$4" -l 1200 -w 2M -t "$5" -O 3 --json 2>/dev/null |
    jq -r '(.end.sum_received.bits_per_second // 0) / 1e6 | . * 10 | round / 10'
}
# probe FROM TO ADDR PORT: one-way latency "p50 p99" of 200 packets/s for 5 s.
probe() {
  $TB exec "$2" "$PROBE" recv --bind "0.0.0.0:$4" --count 1000 --idle-timeout 3000 --max-time 20000 >"$WORK/p.json" &
  local rp=$!
  for _ in $(seq 50); do grep -q ready "$WORK/p.json" 2>/dev/null && break; sleep 0.05; done
  $TB exec "$1" "$PROBE" send --to "$3:$4" --count 1000 --size 200 --rate 200 >/dev/null
  wait "$rp"
  tail -n 1 "$WORK/p.json" | jq -r '"\(.lat_p50_ms) \(.lat_p99_ms)"'
}

routing on
down=$(iperf inet 198.18.10.2 5202 60M "$SECS")
up=$(iperf lan 198.18.20.2 5201 18M "$SECS")
# Latency under 50% load, both directions loaded, probe upstream and downstream.
$TB exec inet timeout 30 iperf3 -c 198.18.10.2 -p 5202 -u -b 25M -l 1200 -w 2M -t 8 >/dev/null 2>&1 &
l1=$!
$TB exec lan timeout 30 iperf3 -c 198.18.20.2 -p 5201 -u -b 7500K -l 1200 -w 2M -t 8 >/dev/null 2>&1 &
l2=$!
sleep 2
read -r tu50 tu99 < <(probe lan inet 198.18.20.2 9601)
wait "$l1" "$l2" || true
routing off
read -r du50 du99 < <(probe lan inet 198.18.20.2 9602)

awk -v d="$down" -v u="$up" -v tu50="$tu50" -v tu99="$tu99" -v du50="$du50" -v du99="$du99" 'BEGIN {
  printf "aggregation on the hybrid profile (iperf3 UDP, offered 120%% of the summed path rates, 3 s ramp omitted)\n"
  printf "  downlink: %.1f Mbit/s of 50 = %.2f of the sum\n", d, d / 50
  printf "  uplink:   %.1f Mbit/s of 15 = %.2f of the sum\n", u, u / 15
  printf "one-way latency, lan -> inet, 200 packets/s:\n"
  printf "  through the tunnel at 50%% load: p50 %.1f ms, p99 %.1f ms\n", tu50, tu99
  printf "  DSL alone, direct, no load:     p50 %.1f ms, p99 %.1f ms\n", du50, du99
  printf "  added by the tunnel under load: p50 %+.1f ms, p99 %+.1f ms\n", tu50 - du50, tu99 - du99
}'
