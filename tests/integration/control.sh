#!/usr/bin/env bash
# Control messages in the testbed (issue 12): 100 messages from the gateway to
# a CPE whose handler logs the id and answers the body's sha256, with TCP
# resets of the tunnel in the middle (all done, right digests, each id once
# and in order); a message sent while the CPE is away answered after it
# resumes; an unknown id; a group of two CPEs; a handler past its timeout and
# the next one; a 1000 packets/s stream while a handler sleeps 2 s; a CPE's
# message to the gateway; exit codes. Prints send-to-result latencies (p50,
# p99 over 100) on the hybrid profile, quiet and during a reset.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip_all "needs jq"

$TB up fast >"$WORK/testbed.log" 2>&1 || { not_ok "testbed up"; finish; }

cat >"$WORK/handler.sh" <<EOF
#!/bin/sh
case "\$1" in
  log) echo "\$TUNNELD_MSG_ID" >>"$WORK/ids.\$TUNNELD_PEER_ID"; sha256sum | cut -d' ' -f1 | tr -d '\\n' ;;
  sleep) sleep "\$(cat)"; echo slept ;;
  echo) cat ;;
  peer) echo "\$TUNNELD_PEER_ID" ;;
  *) exit 3 ;;
esac
EOF
chmod 755 "$WORK/handler.sh"

# The second CPE (section 4, dialling from lan) has its own line, bound to its prefix.
printf 'cpe2 %s 198.18.30.0/24\n' "$(tr -d ' \n' <"$WORK/psk")" >>"$WORK/gw.keys"
start_gateway --id gw-test --on-message "$WORK/handler.sh" --session-hold 20000
start_cpe --on-message "$WORK/handler.sh" --handler-timeout 3 --group lab --group north
wait_subflows cpe 2 15 || { not_ok "tunnel up"; finish; }
install_routing || { not_ok "policy routing"; finish; }

gsend() { $TB exec gw "$TUNNELD" send --socket "$WORK/gw.sock" "$@"; }
csend() { $TB exec cpe "$TUNNELD" send --socket "$WORK/cpe.sock" "$@"; }
now_ms() { date +%s%3N; }
pct() {  # pct P FILE: the P-th percentile of the numbers in FILE
  sort -n "$2" | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'
}

# ---- 1. Status shows the groups; ping both ways.
check "status: the gateway shows the CPE's groups" \
  test "$(status_json gw | jq -c '.sessions[0].groups')" = '["lab","north"]'
out=$(gsend --to cpe1 tunneld.ping); rc=$?
check "gateway -> CPE tunneld.ping: '$out' exit $rc" test "$out" = "cpe1 done 0 pong" -a $rc -eq 0
out=$(csend peer ""); rc=$?
check "CPE -> gateway handler: '$out' exit $rc" test "$out" = "gw-test done 0 cpe1\\n" -a $rc -eq 0

# ---- 2. 100 messages with TCP resets in the middle.
: >"$WORK/sent"; : >"$WORK/bad"
for i in $(seq 100); do
  body="message $i $(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  id=$(gsend --to cpe1 --no-wait log "$body") || echo "send $i failed" >>"$WORK/bad"
  echo "$id $(printf %s "$body" | sha256sum | cut -d' ' -f1)" >>"$WORK/sent"
  if ((i == 40)); then  # resets for a second while the sends go on
    (for _ in $(seq 10); do $TB exec cpe ss -K -tn dport = 7000 >/dev/null 2>&1; sleep 0.1; done) &
    kp=$!
  fi
done
wait "$kp"
for _ in $(seq 100); do
  pending=$(status_json gw | jq -r '.control.pending')
  [[ $pending == 0 ]] && break
  sleep 0.2
done
while read -r id digest; do
  res=$($TB exec gw "$TUNNELD" result --socket "$WORK/gw.sock" "$id")
  [[ $res == "cpe1 done 0 $digest" ]] || echo "$id: $res (wanted $digest)" >>"$WORK/bad"
done <"$WORK/sent"
g=$(status_json gw); c=$(status_json cpe)
echo "# resets: gateway control $(jq -c .control <<<"$g"), connections $(jq -r .counters.connections <<<"$c")"
check "resets: the CPE reconnected ($(jq -r .counters.resumes <<<"$c") resumes)" test "$(jq -r .counters.resumes <<<"$c")" -ge 1
check "resets: all 100 results done with the body's sha256 ($(wc -l <"$WORK/bad") wrong)" test ! -s "$WORK/bad"
check "resets: the handler ran each id once, in sending order" \
  diff <(cut -d' ' -f1 "$WORK/sent") "$WORK/ids.gw-test"

# ---- 3. Unknown id; the exit codes.
out=$(gsend --to cpe1 --to nobody echo hi); rc=$?
check "unknown id: '$(tr '\n' '|' <<<"$out")' exit $rc" \
  test "$out" = $'cpe1 done 0 hi\nnobody unknown -' -a $rc -eq 1
gsend echo hi >/dev/null 2>&1; rc=$?
check "no target flags on the gateway: exit 2 ($rc)" test $rc -eq 2
csend --to x echo hi >/dev/null 2>&1; rc=$?
check "target flags on a CPE: exit 2 ($rc)" test $rc -eq 2
$TB exec gw "$TUNNELD" send --socket "$WORK/none.sock" --all echo hi >/dev/null 2>&1; rc=$?
check "no daemon: exit 3 ($rc)" test $rc -eq 3
out=$(gsend --to cpe1 --json nope ""); rc=$?
check "json, handler exit 3: $out" \
  test "$(jq -r '.[0] | .peer == "cpe1" and .status == "done" and .exit == 3 and .truncated == false' <<<"$out")" = true -a $rc -eq 1

# ---- 4. A message while the CPE is away (within the hold) is answered after it resumes.
$TB set dsl state=blackhole >/dev/null; $TB set lte state=blackhole >/dev/null
for _ in $(seq 100); do [[ $(status_json gw | jq -r '.sessions[0].state') == held ]] && break; sleep 0.1; done
id=$(gsend --to cpe1 --no-wait echo "while away")
sleep 1
early=$($TB exec gw "$TUNNELD" result --socket "$WORK/gw.sock" "$id")
$TB set dsl state=up >/dev/null; $TB set lte state=up >/dev/null
for _ in $(seq 150); do
  res=$($TB exec gw "$TUNNELD" result --socket "$WORK/gw.sock" "$id") && break
  sleep 0.1
done
check "away: pending while held ('$early'), done after resume ('$res')" \
  test "$early" = "cpe1 pending -" -a "$res" = "cpe1 done 0 while away"
wait_subflows cpe 2 15

# ---- 5. A group of two CPEs (the second one dials from the lan namespace).
$TB exec lan "$TUNNELD" client --server 198.18.0.1:7000 --tun ha1 --path eth0 --id cpe2 \
  --prefix 198.18.30.0/24 --status-socket "$WORK/cpe2.sock" --psk-file "$WORK/psk" \
  --on-message "$WORK/handler.sh" --group lab >>"$WORK/cpe2.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ $(status_json gw | jq '[.sessions[] | select(.state == "connected")] | length') == 2 ]] && break; sleep 0.1; done
out=$(gsend --group lab peer ""); rc=$?
check "group lab: both CPEs answer ('$(tr '\n' '|' <<<"$out")')" \
  test "$out" = $'cpe1 done 0 gw-test\\n\ncpe2 done 0 gw-test\\n' -a $rc -eq 0
out=$(gsend --group north peer "")
check "group north: only cpe1 ('$(tr '\n' '|' <<<"$out")')" test "$out" = "cpe1 done 0 gw-test\\n"

# ---- 6. A handler past its timeout (3 s) is answered timeout; the next one runs.
id1=$(gsend --to cpe1 --no-wait sleep 10)
t0=$(now_ms)
out2=$(gsend --to cpe1 --timeout 10 echo next)
t1=$(now_ms)
out1=$($TB exec gw "$TUNNELD" result --socket "$WORK/gw.sock" "$id1")
check "timeout: '$out1', then '$out2' after $((t1 - t0)) ms" \
  test "$out1" = "cpe1 timeout -" -a "$out2" = "cpe1 done 0 next" -a $((t1 - t0)) -lt 6000

# ---- 7. A 1000 packets/s stream while a handler sleeps 2 s.
$TB exec inet "$UDP_PROBE" recv --bind 0.0.0.0:9500 --count 4000 --idle-timeout 3000 --max-time 30000 >"$WORK/s.json" &
rp=$!
for _ in $(seq 50); do grep -q ready "$WORK/s.json" && break; sleep 0.05; done
$TB exec lan "$UDP_PROBE" send --to 198.18.20.2:9500 --count 4000 --size 200 --rate 1000 >/dev/null &
sp=$!
sleep 0.5
out=$(gsend --to cpe1 sleep 2)
wait "$sp"; wait "$rp"
r=$(tail -n 1 "$WORK/s.json")
echo "# stream while sleeping: $(jq -c '{unique, lost, duplicates, reordered, max_gap_ms, lat_p50_ms, lat_p99_ms}' <<<"$r")"
check "sleeping handler ('$out'): 4000 datagrams at 1000/s, none lost or reordered" \
  test "$(jq -r '.unique == 4000 and .lost == 0 and .reordered == 0' <<<"$r")" = true -a "$out" = "cpe1 done 0 slept\\n"

# ---- 8. Latency, send to result, hybrid profile: quiet, then during a reset.
# Figures for docs/measurements.md, not checks: a sanitizer build's are not the binary's.
if [[ -n ${TUNNEL_SANITIZED:-} ]]; then
  ok "# SKIP latency, send to result (sanitizer build: timing is not the binary's)"
  finish
fi
$TB profile hybrid >/dev/null
wait_subflows cpe 2 15
sleep 1
: >"$WORK/lat"
for i in $(seq 100); do
  t0=$(now_ms); gsend --to cpe1 log "latency $i" >/dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >>"$WORK/lat"
done
: >"$WORK/lat0"
for i in $(seq 100); do
  t0=$(now_ms); gsend --to cpe1 tunneld.ping >/dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >>"$WORK/lat0"
done
echo "# hybrid, subflow rtt $(status_json gw | jq -c '[.sessions[] | select(.id == "cpe1") | .connection.subflow[] | .rtt_us / 1000 | floor]') ms"
echo "# hybrid, quiet, tunneld.ping (no handler): p50 $(pct 50 "$WORK/lat0") ms, p99 $(pct 99 "$WORK/lat0") ms"
echo "# hybrid, quiet: send -> result p50 $(pct 50 "$WORK/lat") ms, p99 $(pct 99 "$WORK/lat") ms, max $(pct 100 "$WORK/lat") ms (100 sends)"
: >"$WORK/lat2"; : >"$WORK/rwin"
(  # five resets, 2 s apart: each "START END" (ms) in rwin
  for _ in $(seq 5); do
    sleep 2
    r0=$(now_ms)
    for _ in $(seq 3); do $TB exec cpe ss -K -tn dport = 7000 >/dev/null 2>&1; sleep 0.1; done
    echo "$r0 $(now_ms)" >>"$WORK/rwin"
  done
) &
kp=$!
for i in $(seq 100); do
  t0=$(now_ms); gsend --to cpe1 log "reset $i" >/dev/null; t1=$(now_ms)
  echo "$t0 $t1" >>"$WORK/lat2"
done
wait "$kp"
# The sends under way while a reset went on, and all of them.
awk 'NR == FNR { a[NR] = $1; b[NR] = $2; n = NR; next }
     { for (k = 1; k <= n; k++) if ($2 >= a[k] && $1 <= b[k]) { print $2 - $1; next } }' \
  "$WORK/rwin" "$WORK/lat2" | sort -n >"$WORK/lat2in"
awk '{ print $2 - $1 }' "$WORK/lat2" >"$WORK/lat2all"
echo "# hybrid, $(wc -l <"$WORK/rwin") resets: send -> result p50 $(pct 50 "$WORK/lat2all") ms, p99 $(pct 99 "$WORK/lat2all") ms, max $(pct 100 "$WORK/lat2all") ms (100 sends)"
echo "# hybrid, the $(wc -l <"$WORK/lat2in") sends under way during a reset: $(tr '\n' ' ' <"$WORK/lat2in")ms"
check "latency: every message answered (quiet and reset)" \
  test "$(status_json gw | jq -r '.control.pending')" -eq 0
finish
