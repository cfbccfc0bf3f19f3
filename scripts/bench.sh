#!/usr/bin/env bash
# Benchmark: UDP goodput with iperf3 over the direct path and through the
# tunnel, in one run on the same two-path namespace topology (profile "fast",
# unshaped), for 1400-byte and 64-byte datagrams at unlimited offered rate.
# Prints both and their ratio. Needs root and a build (scripts/build.sh).
#
#   sudo ./scripts/bench.sh [--seconds N] [--json FILE]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=5
JSON_OUT=""
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --json) JSON_OUT=$2; shift 2 ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
done
((SECS >= 1 && SECS <= 60)) || { echo "bench: --seconds must be 1..60" >&2; exit 2; }
TUNNELD="$ROOT/build/tunneld/tunneld"
[[ -x $TUNNELD ]] || { echo "bench: build first (scripts/build.sh)" >&2; exit 1; }
P="bench$((RANDOM % 100))"
TB="$ROOT/netns-testbed/testbed --prefix $P"
WORK=$(mktemp -d /tmp/tunneld-bench.XXXXXX)
cleanup() { $TB down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

$TB up fast >/dev/null
$TB exec inet iperf3 -s -B 198.18.20.2 -p 5201 >/dev/null 2>&1 &

# run_iperf LEN: receiver-side goodput in bit/s and packets/s, "bps pps"
run_iperf() {
  local len=$1 out
  out=$($TB exec lan timeout $((SECS + 15)) iperf3 -c 198.18.20.2 -p 5201 -u -b 0 -l "$len" -t "$SECS" --json 2>&1) || true
  jq -r '(.end.sum_received // .end.sum) as $r | ($r.bits_per_second // 0) as $b |
         "\($b) \($b / 8 / '"$len"')"' <<<"$out" 2>/dev/null || echo "0 0"
}

for _ in $(seq 50); do $TB exec lan bash -c "echo > /dev/tcp/198.18.20.2/5201" 2>/dev/null && break; sleep 0.1; done
read -r d1400 _ < <(run_iperf 1400)
read -r d64 d64pps < <(run_iperf 64)

$TB exec gw "$TUNNELD" server --listen 198.18.0.1:7000 --tun ha0 --tun-address 198.18.100.2/30 \
  --status-socket "$WORK/gw.sock" --log-level warn ${TUNNELD_FLAGS:-} >"$WORK/gw.log" 2>&1 &
$TB exec cpe "$TUNNELD" client --server 198.18.0.1:7000 --tun ha0 --path dsl --path lte \
  --tun-address 198.18.100.1/30 --status-socket "$WORK/cpe.sock" --log-level warn ${TUNNELD_FLAGS:-} >"$WORK/cpe.log" 2>&1 &
for _ in $(seq 100); do
  n=$($TB exec cpe "$TUNNELD" status --socket "$WORK/cpe.sock" --json 2>/dev/null | jq -r '.connection.subflows // 0' || echo 0)
  [[ $n -ge 2 ]] && break
  sleep 0.1
done
$TB exec cpe "$ROOT/scripts/ha-routing.sh" cpe install --tun ha0 --lan-if lan0 >/dev/null
$TB exec gw "$ROOT/scripts/ha-routing.sh" gw install --tun ha0 --wan-if inet0 --cpe-prefix 198.18.10.0/24 >/dev/null

read -r t1400 _ < <(run_iperf 1400)
read -r t64 t64pps < <(run_iperf 64)
drops=$($TB exec cpe "$TUNNELD" status --socket "$WORK/cpe.sock" --json | jq -c '.counters | {drop_queue_full, tx_packets, send_calls}')

awk -v d1=$d1400 -v t1=$t1400 -v d6=$d64 -v t6=$t64 -v dp=$d64pps -v tp=$t64pps -v s=$SECS 'BEGIN {
  printf "UDP goodput, iperf3 -u -b 0, %d s each, profile fast (unshaped veth paths)\n", s
  printf "  %-16s %14s %14s %8s\n", "datagram", "direct", "tunnel", "ratio"
  printf "  %-16s %10.0f Mb/s %10.0f Mb/s %8.2f\n", "1400 bytes", d1/1e6, t1/1e6, (d1 > 0 ? t1/d1 : 0)
  printf "  %-16s %10.0f Mb/s %10.0f Mb/s %8.2f\n", "64 bytes", d6/1e6, t6/1e6, (d6 > 0 ? t6/d6 : 0)
  printf "  %-16s %10.0f kp/s %10.0f kp/s %8.2f\n", "64 bytes (pps)", dp/1e3, tp/1e3, (dp > 0 ? tp/dp : 0)
}'
echo "  tunnel client counters: $drops"
if [[ -n $JSON_OUT ]]; then
  jq -n --argjson d1 "$d1400" --argjson t1 "$t1400" --argjson d6 "$d64" --argjson t6 "$t64" \
    '{direct_1400_bps:$d1, tunnel_1400_bps:$t1, ratio_1400:($t1/$d1), direct_64_bps:$d6, tunnel_64_bps:$t6, ratio_64:($t6/$d6)}' >"$JSON_OUT"
fi
