#!/usr/bin/env bash
# Benchmark: UDP goodput with iperf3 over the direct path and through the
# tunnel, in one run on the same two-path namespace topology (profile "fast",
# unshaped), for 1400-byte and 64-byte datagrams at unlimited offered rate.
# Direct and tunnel alternate for --rounds rounds (the UDP policy routing is
# switched on and off; the tunnel stays up), because on a small machine the
# sender, both daemons and the receiver share the cores and single runs vary;
# it prints every round and the median ratio. Needs root and a build.
#
#   sudo ./scripts/bench.sh [--seconds N] [--rounds R] [--json FILE] [--tunnel-flags "FLAGS"] [--tunneld PATH]
#     --tunnel-flags  extra flags for both tunneld ends, e.g.
#                     "--batch-bytes 0 --no-header-compression" (version 2's bytes)
#     --tunneld       the tunneld binary for both ends (default build/tunneld/tunneld),
#                     e.g. an older build to compare releases in one run
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=4
ROUNDS=3
JSON_OUT=""
FLAGS=""
TUNNELD=""
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --json) JSON_OUT=$2; shift 2 ;;
    --tunnel-flags) FLAGS=$2; shift 2 ;;
    --tunneld) TUNNELD=$2; shift 2 ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
  esac
done
((SECS >= 1 && SECS <= 60)) || { echo "bench: --seconds must be 1..60" >&2; exit 2; }
((ROUNDS >= 1 && ROUNDS <= 9)) || { echo "bench: --rounds must be 1..9" >&2; exit 2; }
[[ -n $TUNNELD ]] || TUNNELD="$ROOT/build/tunneld/tunneld"
[[ -x $TUNNELD ]] || { echo "bench: build first (scripts/build.sh)" >&2; exit 1; }
P="bench$((RANDOM % 100))"
TB="$ROOT/netns-testbed/testbed --prefix $P"
WORK=$(mktemp -d /tmp/tunneld-bench.XXXXXX)
cleanup() { $TB down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
source "$ROOT/scripts/lib-tunnel.sh"

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

# shellcheck disable=SC2086  # FLAGS is a list of flags
tunnel_up bench --log-level warn $FLAGS

printf 'UDP goodput at the receiver, iperf3 -u -b 0, %d s per run, profile fast (unshaped veth paths)%s\n' "$SECS" \
  "${FLAGS:+; tunneld $FLAGS}"
printf '  %-6s %-9s %12s %12s %7s\n' round datagram "direct Mb/s" "tunnel Mb/s" ratio
rows=()
for r in $(seq "$ROUNDS"); do
  for len in 1400 64; do
    routing off; read -r d dp < <(run_iperf "$len")
    routing on; read -r t tp < <(run_iperf "$len")
    ratio=$(awk -v d="$d" -v t="$t" 'BEGIN { printf "%.3f", (d > 0) ? (t / d) : 0 }')
    printf '  %-6s %-9s %12.0f %12.0f %7.2f\n' "$r" "$len B" "$(awk -v x="$d" 'BEGIN{print x/1e6}')" \
      "$(awk -v x="$t" 'BEGIN{print x/1e6}')" "$ratio"
    rows+=("$len $d $t $dp $tp $ratio")
  done
done
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m1400=$(printf '%s\n' "${rows[@]}" | awk '$1 == 1400 { print $6 }' | median)
m64=$(printf '%s\n' "${rows[@]}" | awk '$1 == 64 { print $6 }' | median)
pps_d=$(printf '%s\n' "${rows[@]}" | awk '$1 == 64 { print $4 }' | median)
pps_t=$(printf '%s\n' "${rows[@]}" | awk '$1 == 64 { print $5 }' | median)
printf '  median tunnel/direct ratio: 1400 B %.2f, 64 B %.2f (64 B packets/s: direct %.0fk, tunnel %.0fk)\n' \
  "$m1400" "$m64" "$(awk -v x="$pps_d" 'BEGIN{print x/1e3}')" "$(awk -v x="$pps_t" 'BEGIN{print x/1e3}')"
c=$($TB exec cpe "$TUNNELD" status --socket "$WORK/cpe.sock" --json | jq -c '.counters | {tx_packets, send_calls, drop_queue_full}')
g=$($TB exec gw "$TUNNELD" status --socket "$WORK/gw.sock" --json | jq -c '.counters | {tun_tx_packets, tun_writes}')
echo "  tunnel counters: client $c, gateway $g"
if [[ -n $JSON_OUT ]]; then
  printf '%s\n' "${rows[@]}" | jq -Rn --argjson m1400 "$m1400" --argjson m64 "$m64" \
    '[inputs | split(" ") | map(tonumber) | {len: .[0], direct_bps: .[1], tunnel_bps: .[2], ratio: .[5]}] |
     {runs: ., median_ratio_1400: $m1400, median_ratio_64: $m64}' >"$JSON_OUT"
fi
