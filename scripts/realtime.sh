#!/usr/bin/env bash
# Realtime benchmark on the hybrid profile (DSL 20/5 Mbit/s 10 ms, LTE
# 30/10 Mbit/s 40+-10 ms 0.1% loss), measured like a user would: irtt (a
# VoIP-like probe, 160 bytes every 20 ms) from lan to an irtt server in inet,
# iperf3 UDP as the bulk load. Prints realtime RTT p50/p99, loss and the
# longest gap for:
#   - DSL alone, idle, no tunnel: the reference R (same run);
#   - the tunnel idle; bulk downlink at 50% and 120% of the summed path
#     rates; bulk uplink at 50% and 120%; irtt marked EF (DSCP 46), and the
#     idle and downlink steps again unmarked (classed by behaviour);
#   - a DSL cut with irtt running: the link down (visible), then a silent
#     blackhole; the tunnel is restarted before each cut.
# and the table against issue 11's targets. Writes a PNG of every probe's RTT
# over time across the steps and the cuts. Not a test: it prints numbers.
# Needs root, a build (tunneld, linkem), irtt, iperf3, gnuplot, jq.
#
#   sudo ./scripts/realtime.sh [--seconds N] [--out DIR] [--tunnel-flags "FLAGS"] [--quick] [--no-shape]
#     --seconds       length of each irtt run (default 10, 6..30)
#     --out           where the PNG, the plot data and the table go
#                     (default: build/realtime)
#     --tunnel-flags  extra flags for both tunneld ends
#     --quick         EF steps only (no unmarked repeats)
#     --no-shape      no egress shaping: the CPE's paths without their
#                     rates (--path dsl instead of --path
#                     dsl,up=5mbit,down=20mbit), the gateway without
#                     --shape-downlink dsl --shape-downlink lte
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=10
OUT="$ROOT/build/realtime"
FLAGS=""
QUICK=0
# The hybrid profile's rates (netns-testbed/testbed, profile hybrid).
CPE_PATHS="--path dsl,up=5mbit,down=20mbit --path lte,up=10mbit,down=30mbit"
GW_FLAGS="--shape-downlink dsl --shape-downlink lte"
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tunnel-flags) FLAGS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-shape) CPE_PATHS="--path dsl --path lte"; GW_FLAGS=""; shift ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 6 || SECS > 30)); then echo "realtime: --seconds must be 6..30" >&2; exit 2; fi
TUNNELD="$ROOT/build/tunneld/tunneld"
export LINKEM="$ROOT/build/netns-testbed/linkem"
[[ -x $TUNNELD && -x $LINKEM ]] || { echo "realtime: build first (scripts/build.sh)" >&2; exit 1; }
for t in irtt iperf3 gnuplot jq; do
  command -v "$t" >/dev/null || { echo "realtime: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[[ $EUID -eq 0 ]] || { echo "realtime: needs root (namespaces)" >&2; exit 1; }

# A testbed prefix no other run uses.
P=""
for _ in $(seq 20); do
  c="rtb$((RANDOM % 1000))"
  ip netns list 2>/dev/null | grep -q "^$c-" || { P=$c; break; }
done
[[ -n $P ]] || { echo "realtime: no free testbed prefix" >&2; exit 1; }
TB="$ROOT/netns-testbed/testbed --prefix $P"
WORK=$(mktemp -d /tmp/tunneld-rt.XXXXXX)
mkdir -p "$OUT"
source "$ROOT/scripts/lib-tunnel.sh"
cleanup() {
  set +e
  # Everything started here runs inside the testbed's namespaces: `down`
  # stops it and removes them.
  $TB down >/dev/null 2>&1
  rm -rf "$WORK"
  rmem_restore
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rmem_raise

$TB up hybrid >/dev/null
$TB exec inet irtt server -b 198.18.20.2:2112 -d 0 -i 0 -l 0 >"$WORK/irtt-server.log" 2>&1 &
$TB exec inet iperf3 -s -B 198.18.20.2 -p 5201 >/dev/null 2>&1 &
$TB exec lan iperf3 -s -B 198.18.10.2 -p 5202 >/dev/null 2>&1 &
for _ in $(seq 50); do
  $TB exec inet ss -Hltn | grep -q ':5201' && $TB exec lan ss -Hltn | grep -q ':5202' &&
    $TB exec inet ss -Hlun | grep -q ':2112' && break
  sleep 0.1
done

# tunnel_stop: ends both tunneld processes (by pid, inside this testbed's
# cpe and gw namespaces only) and waits up to 2 s for them.
tunnel_stop() {
  local h pid
  for h in cpe gw; do
    for pid in $(ip netns pids "$P-$h" 2>/dev/null); do
      [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tunneld ]] && kill "$pid" 2>/dev/null
    done
  done
  for _ in $(seq 20); do
    local left=0
    for h in cpe gw; do
      for pid in $(ip netns pids "$P-$h" 2>/dev/null); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tunneld ]] && left=1
      done
    done
    ((left)) || return 0
    sleep 0.1
  done
}

TOFF=0  # where the next run starts on the plot's time axis (s)
: >"$OUT/realtime-steps.txt"
: >"$OUT/realtime-rtt.dat"
: >"$OUT/realtime-lost.dat"

# irtt_run NAME DSCP [EVENT_CMD...]: one irtt run of SECS seconds from lan to
# inet; EVENT_CMD, if given, runs in the background at the same time. Appends
# "NAME p50 p99 loss% gap_ms sent" to $WORK/results and the probes to the plot data.
irtt_run() {
  local name=$1 dscp=$2; shift 2
  local f="$WORK/$name.json" ev=""
  if (($#)); then "$@" & ev=$!; fi
  $TB exec lan timeout $((SECS + 15)) irtt client -i 20ms -l 160 -d "${SECS}s" --dscp="$dscp" \
    -Q -o "$f" 198.18.20.2:2112 || echo "realtime: irtt $name failed" >&2
  [[ -n $ev ]] && { wait "$ev" || true; }
  [[ -s $f ]] || { echo "$name nan nan nan nan 0" >>"$WORK/results"; return 0; }
  # "seqno rtt_ms receive_ms" per probe in send order; a lost one as "seqno -1 -1".
  jq -r '.round_trips[] | if (.lost == "false")
      then "\(.seqno) \(.delay.rtt / 1e6) \(.timestamps.client.receive.wall / 1e6)"
      else "\(.seqno) -1 -1" end' "$f" >"$WORK/$name.rtt"
  local pct
  pct=$(awk '$2 >= 0 { print $2 }' "$WORK/$name.rtt" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.1f %.1f", v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1]; else printf "nan nan" }')
  # The gap: the longest time between two replies arriving (20 ms when
  # nothing is lost or held up).
  local gap
  gap=$(awk '$3 >= 0 { printf "%.3f\n", $3 }' "$WORK/$name.rtt" | sort -n |
    awk 'NR > 1 && $1 - p > g { g = $1 - p } { p = $1 } END { printf "%d", g + 0.5 }')
  awk -v n="$name" -v pct="$pct" -v gap="$gap" '
    $2 < 0 { lost++ }
    END { printf "%s %s %.2f %s %d\n", n, pct, lost * 100 / NR, gap, NR }' "$WORK/$name.rtt" >>"$WORK/results"
  awk -v o="$TOFF" '$2 >= 0 { printf "%.3f %.3f\n", o + $1 * 0.02, $2 }' "$WORK/$name.rtt" >>"$OUT/realtime-rtt.dat"
  awk -v o="$TOFF" '$2 < 0 { printf "%.3f\n", o + $1 * 0.02 }' "$WORK/$name.rtt" >>"$OUT/realtime-lost.dat"
  echo "$TOFF $((TOFF + SECS)) $name" >>"$OUT/realtime-steps.txt"
  TOFF=$((TOFF + SECS + 2))
}

# with_load CLIENT_NS ADDR PORT RATE NAME DSCP: irtt while iperf3 sends RATE
# of 1200-byte UDP datagrams from CLIENT_NS to ADDR:PORT (starts 2 s earlier).
with_load() {
  $TB exec "$1" timeout $((SECS + 20)) iperf3 -c "$2" -p "$3" -u -b "$4" -l 1200 -w 2M -t $((SECS + 3)) >/dev/null 2>&1 &
  local ip=$!
  sleep 2
  irtt_run "$5" "$6"
  wait "$ip" || true
  sleep 1
}

# cut STATE: DSL goes STATE 3 s into the run and comes back 3 s before its end.
cut() {
  sleep 3
  $TB set dsl state="$1"
  sleep $((SECS - 6))
  $TB set dsl state=up
}

EF=0xb8
echo "realtime benchmark, prefix $P, hybrid profile, irtt -i 20ms -l 160 -d ${SECS}s; CPE $CPE_PATHS; gateway ${GW_FLAGS:-(no shaping)}${FLAGS:+; tunneld $FLAGS}" >&2
: >"$WORK/results"
irtt_run dsl-alone $EF
# shellcheck disable=SC2086  # FLAGS is a list of flags
tunnel_up rt --log-level warn $FLAGS
routing on
irtt_run idle $EF
((QUICK)) || irtt_run idle-unmarked 0
with_load inet 198.18.10.2 5202 25M down50 $EF
with_load inet 198.18.10.2 5202 60M down120 $EF
if ((!QUICK)); then
  with_load inet 198.18.10.2 5202 25M down50-unmarked 0
  with_load inet 198.18.10.2 5202 60M down120-unmarked 0
fi
with_load lan 198.18.20.2 5201 7500K up50 $EF
with_load lan 198.18.20.2 5201 18M up120 $EF
for st in down blackhole; do
  routing off
  tunnel_stop
  tunnel_up rt --log-level warn $FLAGS
  routing on
  irtt_run "cut-$st" $EF cut "$st"
done
routing off

# The table against issue 11's targets (R = DSL alone, RTT p99).
awk -v R="$(awk '$1 == "dsl-alone" { print $3 }' "$WORK/results")" '
  function row(n, p50, p99, loss, gap, tgt, ok) {
    printf "%-20s %8s %8s %7s %8s   %-24s %s\n", n, p50, p99, loss, gap, tgt, ok }
  BEGIN { row("step", "p50 ms", "p99 ms", "loss %", "gap ms", "target", "") }
  {
    n = $1; t = ""; ok = ""
    if (n == "dsl-alone") t = "reference R"
    else if (n ~ /^(idle|down50)/) { t = sprintf("p99 <= R+5 (%.1f)", R + 5); ok = ($3 <= R + 5) }
    else if (n == "up50") { t = sprintf("p99 <= R+10 (%.1f)", R + 10); ok = ($3 <= R + 10) }
    else if (n ~ /120/) { t = sprintf("p99 <= R+15, loss<=0.1"); ok = ($3 <= R + 15 && $4 <= 0.1) }
    else if (n ~ /^cut/) { t = "gap <= 150, lost 0"; ok = ($5 <= 150 && $4 == 0) }
    if (ok != "") ok = ok ? "met" : "MISSED"
    row(n, $2, $3, $4, $5, t, ok)
  }' "$WORK/results" | tee "$OUT/realtime-table.txt"

# The plot: every probe's RTT (log scale), lost probes as marks near the
# top, each step labelled, the cuts' start and end as dashed lines.
{
  echo "set terminal pngcairo size 1600,650 font 'sans,10'"
  echo "set output '$OUT/realtime-rtt.png'"
  echo "set title 'Realtime RTT (irtt, 160 B every 20 ms, lan -> inet) on the hybrid profile: DSL alone, then the tunnel idle, under bulk load and across a DSL cut'"
  echo "set xlabel 'time across the steps (s); shaded: one ${SECS} s step each; red: DSL cut (dashed: cut and restore)'"
  echo "set ylabel 'RTT (ms, log scale)'"
  echo "set logscale y; set yrange [10:6000]; set grid ytics mytics; set key bottom right opaque box"
  R=$(awk '$1 == "dsl-alone" { print $3 }' "$WORK/results")
  if [[ $R =~ ^[0-9.]+$ ]]; then
    echo "set arrow from graph 0, first $R to graph 1, first $R nohead lc rgb '#2a9d2a' dt 3"
    echo "set label 'R = DSL alone p99 ($R ms)' at graph 0.995, first $R right offset 0,0.6 font 'sans,8' tc rgb '#2a9d2a'"
  fi
  i=0
  while read -r a b n; do
    echo "set object rect from $a,10 to $b,6000 fc rgb '$([[ $n == cut* ]] && echo '#f6dcdc' || echo '#e8eef7')' fs solid 0.7 noborder behind"
    echo "set label '$n' at $(((a + b) / 2)),$(((i % 2) ? 2600 : 4300)) center font 'sans,9'"
    if [[ $n == cut* ]]; then
      for x in $((a + 3)) $((b - 3)); do echo "set arrow from $x,10 to $x,6000 nohead dt 2 lc rgb '#c02020'"; done
    fi
    i=$((i + 1))
  done <"$OUT/realtime-steps.txt"
  printf "plot '%s' using 1:2 with points pt 7 ps 0.3 lc rgb '#1f5fa8' title 'probe RTT'" "$OUT/realtime-rtt.dat"
  if [[ -s $OUT/realtime-lost.dat ]]; then
    printf ", '%s' using 1:(1600) with points pt 2 ps 0.5 lc rgb '#c02020' title 'probe lost'" "$OUT/realtime-lost.dat"
  fi
  echo
} >"$OUT/realtime-rtt.gp"
gnuplot "$OUT/realtime-rtt.gp"
echo "plot: $OUT/realtime-rtt.png" >&2
