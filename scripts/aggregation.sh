#!/usr/bin/env bash
# Aggregation benchmark on the hybrid profile (DSL 20/5 Mbit/s 10 ms, LTE
# 30/10 Mbit/s 40+-10 ms 0.1% loss), in one run:
#   - UDP goodput through the tunnel at 120% of the paths' summed rate,
#     divided by that sum, downlink and uplink. iperf3 offers the load; the
#     goodput is counted in a steady window (after a 3 s ramp, before the
#     end) as datagrams delivered to the receiving namespace's sockets times
#     their payload. Beside it, what explains the ratio: how busy each path
#     was (its shaper's byte counter against its rate), goodput per byte on
#     the wire, the share of TCP segments retransmitted, and the share of
#     packets that went as compressed records;
#   - one-way latency of a 200 packets/s probe through the tunnel while
#     iperf3 loads it to 50%, against the same probe over the faster path
#     alone (DSL: the direct route, no tunnel, no load); p50 and p99.
# Not a test: it prints numbers. Needs root and a build.
#
#   sudo ./scripts/aggregation.sh [--seconds N] [--size BYTES] [--tunnel-flags "FLAGS"] [--tunneld PATH]
#     --seconds       length of each load run (default 20; the window is N-4 s)
#     --size          UDP payload of the load (default 1200)
#     --tunnel-flags  extra flags for both tunneld ends, e.g.
#                     "--batch-bytes 0 --no-header-compression" (version 2's bytes)
#     --tunneld       the tunneld binary for both ends (default build/tunneld/tunneld),
#                     e.g. an older build to compare releases in one run
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=20
SIZE=1200
FLAGS=""
TUNNELD=""
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --tunnel-flags) FLAGS=$2; shift 2 ;;
    --tunneld) TUNNELD=$2; shift 2 ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
  esac
done
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 8 || SECS > 60)); then echo "aggregation: --seconds must be 8..60" >&2; exit 2; fi
if ! [[ $SIZE =~ ^[0-9]+$ ]] || ((SIZE < 64 || SIZE > 1472)); then echo "aggregation: --size must be 64..1472" >&2; exit 2; fi
[[ -n $TUNNELD ]] || TUNNELD="$ROOT/build/tunneld/tunneld"
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
# shellcheck disable=SC2086  # FLAGS is a list of flags
tunnel_up agg --log-level warn $FLAGS
$TB exec inet iperf3 -s -B 198.18.20.2 -p 5201 >/dev/null 2>&1 &
$TB exec lan iperf3 -s -B 198.18.10.2 -p 5202 >/dev/null 2>&1 &
for _ in $(seq 50); do
  $TB exec inet ss -Hltn | grep -q ':5201' && $TB exec lan ss -Hltn | grep -q ':5202' && break
  sleep 0.1
done

# sample RX_NS SENDER_NS SENDER_ROLE DEV: one line of counters, in this order:
# time, bytes through the dsl and lte shapers on DEV (tocpe: down, togw: up),
# UDP datagrams delivered in RX_NS, TCP segments sent and retransmitted in
# SENDER_NS, and the sending tunneld's packets and compressed packets.
sample() {
  local t dsl lte udp segs st
  t=$(date +%s.%N)
  dsl=$($TB exec dsl tc -s -j qdisc show dev "$4" | jq -r '.[0].bytes')
  lte=$($TB exec lte tc -s -j qdisc show dev "$4" | jq -r '.[0].bytes')
  udp=$($TB exec "$1" nstat -az UdpInDatagrams | awk '/UdpInDatagrams/ {print $2}')
  segs=$($TB exec "$2" nstat -az TcpOutSegs TcpRetransSegs | awk '{v[$1] = $2} END {print v["TcpOutSegs"], v["TcpRetransSegs"]}')
  st=$($TB exec "$2" "$TUNNELD" status --socket "$WORK/$3.sock" --json | jq -r '"\(.counters.tx_packets) \(.counters.tx_compressed)"')
  echo "$t $dsl $lte $udp $segs $st"
}

# load NAME CLIENT_NS ADDR PORT RATE RX_NS SENDER_NS ROLE DEV SUM DSL_RATE LTE_RATE:
# a load run; prints one summary line.
load() {
  $TB exec "$2" timeout $((SECS + 20)) iperf3 -c "$3" -p "$4" -u -b "$5" -l "$SIZE" -w 2M -t "$SECS" >/dev/null 2>&1 &
  local ip=$! a b
  sleep 3
  a=$(sample "$6" "$7" "$8" "$9")
  sleep $((SECS - 4))
  b=$(sample "$6" "$7" "$8" "$9")
  wait "$ip" || true
  awk -v n="$1" -v sum="${10}" -v rd="${11}" -v rl="${12}" -v len="$SIZE" -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " "); dt = y[1] - x[1]
    d = (y[2] - x[2]) * 8 / dt / 1e6; l = (y[3] - x[3]) * 8 / dt / 1e6
    g = (y[4] - x[4]) * len * 8 / dt / 1e6
    segs = y[5] - x[5]; rtx = y[6] - x[6]; pk = y[7] - x[7]; z = y[8] - x[8]
    printf "  %s: %.1f Mbit/s of %d = %.3f of the sum\n", n, g, sum, g / sum
    printf "    paths busy: dsl %.1f of %d, lte %.1f of %d Mbit/s on the wire (%.3f); goodput per wire byte %.3f\n",
      d, rd, l, rl, (d + l) / sum, ((d + l) > 0 ? g / (d + l) : 0)
    printf "    TCP segments retransmitted %.1f%%; packets sent compressed %.0f%%\n",
      (segs > 0 ? rtx * 100 / segs : 0), (pk > 0 ? z * 100 / pk : 0)
  }'
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
echo "aggregation on the hybrid profile (iperf3 UDP, ${SIZE}-byte datagrams, offered 120% of the summed path"
echo "rates, goodput over $((SECS - 4)) s after a 3 s ramp)${FLAGS:+; tunneld $FLAGS}"
load downlink inet 198.18.10.2 5202 60M lan gw gw tocpe 50 20 30
load uplink lan 198.18.20.2 5201 18M inet cpe cpe togw 15 5 10
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

awk -v tu50="$tu50" -v tu99="$tu99" -v du50="$du50" -v du99="$du99" 'BEGIN {
  printf "one-way latency, lan -> inet, 200 packets/s:\n"
  printf "  through the tunnel at 50%% load: p50 %.1f ms, p99 %.1f ms\n", tu50, tu99
  printf "  DSL alone, direct, no load:     p50 %.1f ms, p99 %.1f ms\n", du50, du99
  printf "  added by the tunnel under load: p50 %+.1f ms, p99 %+.1f ms\n", tu50 - du50, tu99 - du99
}'
