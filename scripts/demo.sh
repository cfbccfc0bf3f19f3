#!/usr/bin/env bash
# The main job, end to end on one machine: builds tunneld, brings up the
# namespace testbed with the "hybrid" profile (DSL 20/5 Mbit/s, LTE 30/10
# Mbit/s with 0.1% loss), starts a gateway and a CPE, sends real UDP traffic
# through the tunnel (iperf3 both ways, plus an integrity probe) and prints a
# summary. Tears everything down on exit. Needs root.
#   sudo ./scripts/demo.sh [--seconds N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=5
[[ ${1:-} == --seconds ]] && SECS=$2
((SECS >= 2 && SECS <= 60)) || { echo "demo: --seconds must be 2..60" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "demo: needs root (network namespaces); try: sudo $0" >&2; exit 1; }

"$ROOT/scripts/build.sh" >/dev/null
TUNNELD="$ROOT/build/tunneld/tunneld"
PROBE="$ROOT/build/netns-testbed/udp-probe"
P="demo$((RANDOM % 100))"
TB="$ROOT/netns-testbed/testbed --prefix $P"
WORK=$(mktemp -d /tmp/tunneld-demo.XXXXXX)
source "$ROOT/scripts/lib-tunnel.sh"
cleanup() { $TB down >/dev/null 2>&1 || true; rm -rf "$WORK"; rmem_restore; }
trap cleanup EXIT

"$ROOT/kernel-config/check.sh" >/dev/null || { "$ROOT/kernel-config/check.sh"; exit 1; }
rmem_raise
$TB up hybrid >/dev/null
tunnel_up demo
st() { $TB exec "$1" "$TUNNELD" status --socket "$WORK/$1.sock" --json; }
routing on

echo "tunneld demo: profile hybrid (DSL 20 down / 5 up Mbit/s, 10 ms one way; LTE 30 down / 10 up Mbit/s,"
echo "  40 ms +-10 ms one way, 0.1% loss)"
st cpe | jq -r '"  tunnel: MPTCP \(.sessions[0].connection.mptcp), \(.sessions[0].connection.subflows) subflows: " +
  ([.sessions[0].connection.subflow[] | select(.established) | .local] | join(", "))'

# iperf3 UDP at 80% of the paths' summed rate, one direction at a time.
# run DIR RATE_MBIT SUM_MBIT HOST_RX ADDR_RX HOST_TX STATUS_HOST
run() {
  local dir=$1 rate=$2 sum=$3 rx=$4 addr=$5 tx=$6 sh=$7
  $TB exec "$rx" iperf3 -s -1 -B "$addr" -p 5301 >/dev/null 2>&1 &
  local srv=$!
  for _ in $(seq 50); do $TB exec "$rx" ss -Hltn "sport = :5301" | grep -q . && break; sleep 0.1; done
  local s0 s1 out
  s0=$(st "$sh")
  out=$($TB exec "$tx" timeout $((SECS + 15)) iperf3 -c "$addr" -p 5301 -u -b "${rate}M" -l 1200 -w 2M -t "$SECS" --json)
  s1=$(st "$sh")
  wait "$srv" || true
  jq -rn --argjson o "$out" --argjson a "$s0" --argjson b "$s1" --arg dir "$dir" --argjson sum "$sum" \
    --argjson secs "$SECS" --argjson rate "$rate" '
    ($o.end.sum_received.bits_per_second / 1e6) as $g |
    def path: [.local, .remote] | map(split(":")[0]) |
      if any(startswith("198.18.1.")) then "dsl" elif any(startswith("198.18.2.")) then "lte" else "other" end;
    [$b.sessions[0].connection.subflow[] as $s
      | ([$a.sessions[0].connection.subflow[] | select(.local == $s.local and .remote == $s.remote) | .bytes_sent] | first // 0) as $x
      | "\($s | path) \((($s.bytes_sent - $x) * 8 / $secs / 1e6) * 10 | round / 10)"] as $per |
    "  \($dir): offered \($rate) Mbit/s, goodput \($g * 10 | round / 10) Mbit/s = \(($g / $sum * 100) | round)% of the paths'"'"' \($sum) Mbit/s;" +
    " per path (Mbit/s on the wire): \($per | join(", ")); lost \($o.end.sum_received.lost_packets) of \($o.end.sum_received.packets) (\($o.end.sum_received.lost_percent * 100 | round / 100)%)"'
}
run downlink 40 50 lan 198.18.10.2 inet gw
run uplink 12 15 inet 198.18.20.2 lan cpe

# Integrity and latency: 1000 datagrams of random size, 64..1472 bytes, at 200/s.
$TB exec inet "$PROBE" recv --bind 0.0.0.0:9100 --count 1000 --idle-timeout 3000 >"$WORK/probe.json" &
rp=$!
for _ in $(seq 50); do grep -q ready "$WORK/probe.json" 2>/dev/null && break; sleep 0.05; done
$TB exec lan "$PROBE" send --to 198.18.20.2:9100 --count 1000 --size 64-1472 --rate 200 >/dev/null
wait $rp || true
tail -n 1 "$WORK/probe.json" | jq -r '"  integrity (lan -> inet, 1000 datagrams of 64..1472 bytes): received \(.received), intact \(.unique), corrupt \(.corrupt), duplicates \(.duplicates), lost \(.lost); one-way latency p50 \(.lat_p50_ms) ms, p99 \(.lat_p99_ms) ms"'
for h in cpe gw; do
  st $h | jq -r --arg h "$h" '.counters | "  \($h) counters: sent \(.tx_packets) in \(.tx_frames) frames (\(.tx_compressed) compressed), received \(.rx_packets), dropped: queue-full \(.drop_queue_full), non-UDP \(.drop_non_udp), buffer-full \(.drop_buffer_full), replayed \(.replayed), TUN write \(.drop_tun_write)"'
done
