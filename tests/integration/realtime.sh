#!/usr/bin/env bash
# Realtime traffic classes on the hybrid profile, checking only what holds on
# a busy machine: irtt's flow (160 bytes every 20 ms) is classed realtime by
# DSCP (EF) and, unmarked, by behaviour, while iperf3's is bulk; the CPE has a
# realtime link per path; both ends shape their egress per path (the CPE's
# --path rates, the gateway's --shape-downlink) with the realtime links'
# packets in the realtime leaf; with bulk at 50% of the downlink the
# realtime RTT's median stays within R + 10 ms and its p99 within R + 150 ms
# (R: DSL alone, idle, p99, this run; the target, p99 within R + 5, is the
# benchmark's to report); a DSL cut (link down) during
# the probe loses no probe; the shaping goes when the daemons stop.
# scripts/realtime.sh is the benchmark with the full table against the targets.
source "$(dirname "$0")/lib.sh"
command -v irtt >/dev/null || skip_all "irtt not installed"
command -v iperf3 >/dev/null || skip_all "iperf3 not installed"
source "$ROOT/scripts/lib-tunnel.sh"

$TB up hybrid >/dev/null
$TB exec inet irtt server -b 198.18.20.2:2112 -d 0 -i 0 -l 0 >"$WORK/irtt-server.log" 2>&1 &
PIDS+=($!)
$TB exec lan iperf3 -s -B 198.18.10.2 -p 5202 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
trap 'rmem_restore; cleanup' EXIT
rmem_raise

# irtt_p NAME DSCP SECS: irtt lan -> inet; prints "p50 p99 lost sent" (ms, ms, probes, probes).
irtt_p() {
  local f="$WORK/$1.json"
  $TB exec lan timeout $(($3 + 15)) irtt client -i 20ms -l 160 -d "${3}s" --dscp="$2" -Q -o "$f" 198.18.20.2:2112 \
    >/dev/null 2>&1
  [[ -s $f ]] || { echo "nan nan nan 0"; return; }
  jq -r '[.round_trips[] | select(.lost == "false") | .delay.rtt / 1e6] | sort as $r
    | "\($r[(($r | length) * 0.5 | floor)] // "nan") \($r[(($r | length) * 0.99 | floor)] // "nan")"' "$f" |
    tr '\n' ' '
  jq -r '"\([.round_trips[] | select(.lost != "false")] | length) \(.round_trips | length)"' "$f"
}

read -r r50 R _ _ <<<"$(irtt_p dsl-alone 0xb8 5)"
echo "# DSL alone, idle: p50 $r50 ms, p99 $R ms (R)"

CPE_PATHS=(--path dsl,up=5mbit,down=20mbit --path lte,up=10mbit,down=30mbit)
start_gateway --shape-downlink dsl --shape-downlink lte
start_cpe
for _ in $(seq 100); do
  [[ $(status_json cpe | jq -r '.sessions[0].links_connected // 0') -ge 3 ]] && break
  sleep 0.1
done
check "policy routing into the tunnel installed" install_routing
c=$(status_json cpe)
check "the CPE has its bulk link and a realtime link per path ($(jq -r '.sessions[0].links_connected' <<<"$c") of 3)" \
  test "$(jq -r '.sessions[0].links_connected' <<<"$c")" -eq 3

read -r p50 p99 lost sent <<<"$(irtt_p idle 0xb8 5)"
echo "# tunnel idle, EF: p50 $p50 p99 $p99 ms, lost $lost of $sent"
# flows HOST DPORT: "class/why" of each flow to that port that the host's classifier saw.
flows() { status_json "$1" | jq -r --argjson p "$2" '[.flows[] | select(.dport == $p) | "\(.class)/\(.why)"] | join(" ")'; }
f=$(flows cpe 2112)
check "the EF-marked probe's flow is realtime ($f)" test "$f" = "realtime/dscp" -o "$f" = "realtime/behaviour"
rt_before=$(status_json cpe | jq -r '.classes.realtime_packets')
check "its packets were classed realtime ($rt_before)" test "$rt_before" -ge 240

# Unmarked: the same probe, classed by its behaviour (small packets, low rate).
read -r p50 p99 lost sent <<<"$(irtt_p unmarked 0 4)"
f=$(flows cpe 2112)
rt_after=$(status_json cpe | jq -r '.classes.realtime_packets')
echo "# tunnel idle, unmarked: p50 $p50 p99 $p99 ms, lost $lost of $sent; flows to the probe's port: $f"
check "an unmarked small low-rate flow is realtime too ($((rt_after - rt_before)) more realtime packets; $f)" \
  test $((rt_after - rt_before)) -ge 190 -a "$(wc -w <<<"$f")" -ge 2

# rt_packets NS DEV: packets the htb realtime leaves (prio 0) on DEV have sent.
rt_packets() {
  $TB exec "$1" tc -s class show dev "$2" |
    awk '$1 == "class" { on = / parent / && / prio 0 / } on && $1 == "Sent" { n += $4 } END { print n + 0 }'
}
for _ in $(seq 50); do grep -q "downlink to 198.18.2.1 shaped" "$WORK/gw.log" && break; sleep 0.1; done
cpe_rt=$(rt_packets cpe dsl); gw_rt=$(rt_packets gw dsl)
check "the CPE shapes each path's egress, realtime first (dsl realtime leaf: $cpe_rt packets)" \
  test "$cpe_rt" -ge 200 -a "$($TB exec cpe tc qdisc show dev lte | grep -c htb)" -eq 1
check "the gateway shapes each CPE path's downlink, realtime first (dsl realtime leaf: $gw_rt packets)" \
  test "$gw_rt" -ge 200 -a "$(grep -c "CPE 'cpe1': downlink to .* shaped" "$WORK/gw.log")" -eq 2

# Bulk at 50% of the summed downlink (25 of 50 Mbit/s) during the probe.
$TB exec inet timeout 30 iperf3 -c 198.18.10.2 -p 5202 -u -b 25M -l 1200 -w 2M -t 9 >/dev/null 2>&1 &
ip=$!
sleep 2
read -r p50 p99 lost sent <<<"$(irtt_p down50 0xb8 6)"
wait "$ip" || true
echo "# tunnel, bulk downlink at 50%: p50 $p50 p99 $p99 ms, lost $lost of $sent"
bulk=$(status_json gw | jq -r '[.flows[] | select(.dport == 5202)][0].class')
check "iperf3's flow is bulk ($bulk)" test "$bulk" = bulk
# The shaping keeps the lines' own buffers empty, so realtime waits behind
# at most a packet. Without it the median at 50% load was R + 26 ms (the
# line's standing queue), before traffic classes 280-365 ms at p99. The
# median catches the first; the p99 bound, loose enough for a CPU spike of a
# busy 2-core CI machine (one measured R + 43 ms), the second.
if [[ -n ${TUNNEL_SANITIZED:-} ]]; then
  ok "# SKIP realtime latency under load (sanitizer build: timing is not the binary's)"
else
  check "realtime p50 at 50% bulk load within R + 10 ms ($p50 <= $R + 10)" \
    awk -v a="$p50" -v b="$R" 'BEGIN { exit !(a != "nan" && a <= b + 10) }'
  check "realtime p99 at 50% bulk load within R + 150 ms ($p99 <= $R + 150)" \
    awk -v a="$p99" -v b="$R" 'BEGIN { exit !(a != "nan" && a <= b + 150) }'
fi

# A DSL cut (link down) 2 s into a 6 s probe: realtime continues on LTE's link.
( sleep 2; $TB set dsl state=down; sleep 3; $TB set dsl state=up ) &
cp=$!
read -r p50 p99 lost sent <<<"$(irtt_p cut 0xb8 6)"
wait "$cp" || true
echo "# tunnel, DSL cut: p50 $p50 p99 $p99 ms, lost $lost of $sent"
check "a DSL cut loses no realtime probe ($lost lost of $sent)" test "$lost" = 0 -a "$sent" -gt 200

kill "$CPE_PID" "$GW_PID"; wait "$CPE_PID" "$GW_PID" 2>/dev/null
check "the daemons removed their shaping when they stopped" \
  test -z "$($TB exec cpe tc qdisc show dev dsl | grep htb)$($TB exec gw tc qdisc show dev dsl | grep htb)"
finish
