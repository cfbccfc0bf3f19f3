#!/usr/bin/env bash
# The session layer in the testbed (fast profile): a wrong key is refused and
# nothing is forwarded; TCP resets that kill the tunnel for about a second
# during a 1000 packets/s stream in each direction lose nothing and reorder
# nothing; garbage and half-open connections leave an established CPE alone;
# an outage longer than the hold time replaces the session and the counters
# show what was dropped; a CPE that stops cleanly leaves the table at once.
source "$(dirname "$0")/lib.sh"

$TB up fast >"$WORK/testbed.log" 2>&1 || { not_ok "testbed up"; finish; }

# ---- 1. A CPE with the wrong key.
make_key "$WORK/wrong.psk"
start_gateway --session-hold 3000 --handshake-timeout 2000 --max-pending 32
CPE_PSK=$WORK/wrong.psk start_cpe
sleep 2
check "wrong key: the gateway refuses with a logged reason" grep -q "CPE 'cpe1': wrong proof of the key" "$WORK/gw.log"
check "wrong key: the CPE is told why" grep -q "refused by the gateway: authentication failed" "$WORK/cpe.log"
g=$(status_json gw)
check "wrong key: counted, no session ($(jq -c '{auth_failures: .counters.auth_failures, sessions: (.sessions|length)}' <<<"$g"))" \
  test "$(jq -r '.counters.auth_failures >= 1 and (.sessions | length) == 0' <<<"$g")" = true
install_routing || { not_ok "policy routing"; finish; }
r=$(probe lan inet 198.18.20.2 50 200 500 9100)
g=$(status_json gw)
check "wrong key: nothing is forwarded ($(jnum .received "$r") of 50 arrived, gateway wrote $(jq -r .counters.tun_tx_packets <<<"$g"))" \
  test "$(jnum .received "$r")" -eq 0 -a "$(jq -r .counters.tun_tx_packets <<<"$g")" -eq 0
kill "$CPE_PID"; wait "$CPE_PID" 2>/dev/null

# ---- 2. The right key; TCP resets for ~1 s during a stream each way.
start_cpe
wait_subflows cpe 2 15 || { not_ok "tunnel up with the right key"; finish; }
install_routing >/dev/null 2>&1
sid=$(status_json gw | jq -r '.sessions[0].session_id')
check "right key: the gateway table has the CPE with its prefixes" \
  test "$(status_json gw | jq -r '.sessions[0] | .id == "cpe1" and .state == "connected" and (.prefixes | index("198.18.10.0/24") != null)')" = true

$TB exec inet "$UDP_PROBE" recv --bind 0.0.0.0:9200 --count 6000 --idle-timeout 4000 --max-time 30000 >"$WORK/up.json" &
up_rp=$!
$TB exec lan "$UDP_PROBE" recv --bind 0.0.0.0:9201 --count 6000 --idle-timeout 4000 --max-time 30000 >"$WORK/down.json" &
down_rp=$!
for _ in $(seq 50); do grep -q ready "$WORK/up.json" && grep -q ready "$WORK/down.json" && break; sleep 0.05; done
$TB exec lan "$UDP_PROBE" send --to 198.18.20.2:9200 --count 6000 --size 200 --rate 1000 >/dev/null &
up_sp=$!
$TB exec inet "$UDP_PROBE" send --to 198.18.10.2:9201 --count 6000 --size 200 --rate 1000 >/dev/null &
down_sp=$!
sleep 2
t_reset=$(date +%s%3N)
# For one second: no new TCP connection or subflow can reach the gateway
# (SYNs dropped), and every established subflow is reset (ss -K sends RST).
$TB exec cpe nft -f - <<'EOF'
table inet tbreset {
  chain out { type filter hook output priority 0; tcp dport 7000 tcp flags & (syn | ack) == syn drop; }
}
EOF
for _ in $(seq 10); do
  $TB exec cpe ss -K -tn dport = 7000 >/dev/null 2>&1
  sleep 0.1
done
$TB exec cpe nft delete table inet tbreset
wait "$up_sp" "$down_sp"; wait "$up_rp" "$down_rp"
up=$(tail -n 1 "$WORK/up.json"); down=$(tail -n 1 "$WORK/down.json")
resumed_line=$(grep -m1 "resumed session" "$WORK/cpe.log")
t_resume=$(date -d "$(cut -d' ' -f1 <<<"$resumed_line" | tr T ' ')" +%s%3N 2>/dev/null || echo 0)
c=$(status_json cpe); g=$(status_json gw)
echo "# resets: upstream $(jq -c '{received, lost, duplicates, reordered, max_gap_ms, lat_p99_ms}' <<<"$up")"
echo "# resets: downstream $(jq -c '{received, lost, duplicates, reordered, max_gap_ms, lat_p99_ms}' <<<"$down")"
echo "# first reset to resume (replay starts): $((t_resume - t_reset)) ms; $resumed_line"
echo "# cpe: $(jq -c '.counters | {connections, resumes, replayed, peak_buffered, tx_frames, tx_compressed, rx_duplicates, rx_missing, drop_queue_full, drop_buffer_full, drop_buffer_age}' <<<"$c")"
echo "# gw:  $(jq -c '.counters | {connections, resumes, replayed, peak_buffered, tx_frames, tx_compressed, rx_duplicates, rx_missing, drop_buffer_full, drop_buffer_age}' <<<"$g")"
check "resets: the session was resumed, not replaced ($(jq -r .counters.resumes <<<"$c") resumes)" \
  test "$(jq -r '.counters.resumes' <<<"$c")" -ge 1 -a "$(status_json gw | jq -r '.sessions[0].session_id')" = "$sid"
for d in up down; do
  r=${!d}
  check "resets, ${d}stream: 6000 datagrams arrive exactly once and in order ($(jq -c '{unique, lost, duplicates, reordered}' <<<"$r"))" \
    test "$(jq -r '.unique == 6000 and .lost == 0 and .duplicates == 0 and .reordered == 0 and .corrupt == 0' <<<"$r")" = true
done
check "resets: what waited out the outage was replayed in shared frames, compressed (cpe $(jq -r .counters.tx_compressed <<<"$c"), gw $(jq -r .counters.tx_compressed <<<"$g") compressed)" \
  test "$(jq -r '.counters.tx_compressed' <<<"$c")" -ge 500 -a "$(jq -r '.counters.tx_compressed' <<<"$g")" -ge 500
check "resets: resumed within 3 s of the first reset ($((t_resume - t_reset)) ms)" \
  test "$t_resume" -gt "$t_reset" -a $((t_resume - t_reset)) -lt 3000

# ---- 3. Garbage and half-open connections while a stream runs.
conns=$(status_json cpe | jq -r '.counters.connections')
g0=$(status_json gw)
$TB exec inet "$UDP_PROBE" recv --bind 0.0.0.0:9300 --count 3000 --idle-timeout 4000 --max-time 30000 >"$WORK/g.json" &
rp=$!
for _ in $(seq 50); do grep -q ready "$WORK/g.json" && break; sleep 0.05; done
$TB exec lan "$UDP_PROBE" send --to 198.18.20.2:9300 --count 3000 --size 200 --rate 1000 >/dev/null &
sp=$!
for i in $(seq 10); do
  head -c 2000 /dev/urandom | $TB exec lan timeout 2 socat -u - TCP:198.18.0.1:7000 2>/dev/null
done
# Valid header, oversize length; and a HELLO with garbage inside.
printf '\x03\x01\x00\x00\x7f\xff\xff\xff' | $TB exec lan timeout 2 socat -u - TCP:198.18.0.1:7000 2>/dev/null
printf '\x03\x02\x00\x00\x00\x00\x00\x10AAAAAAAAAAAAAAAA' | $TB exec lan timeout 2 socat -u - TCP:198.18.0.1:7000 2>/dev/null
# 60 connections that never speak (more than --max-pending 32), held 3 s.
$TB exec lan bash -c 'for i in $(seq 60); do exec {fd}<>/dev/tcp/198.18.0.1/7000 || true; done; sleep 3' 2>/dev/null &
hp=$!
wait "$hp" "$sp"; wait "$rp"
sleep 2.5  # past --handshake-timeout for whatever is still pending
r=$(tail -n 1 "$WORK/g.json")
g1=$(status_json gw)
echo "# garbage: gateway $(jq -c '.counters | {handshake_failures, handshake_timeouts, evicted_pending, protocol_errors}' <<<"$g1")"
check "garbage/half-open: the gateway is still running" kill -0 "$GW_PID"
check "garbage/half-open: the CPE's stream lost nothing ($(jq -c '{unique, lost}' <<<"$r"))" \
  test "$(jq -r '.unique == 3000 and .lost == 0' <<<"$r")" = true
check "garbage/half-open: the CPE kept its connection" test "$(status_json cpe | jq -r .counters.connections)" -eq "$conns"
check "garbage/half-open: refusals counted (pending cap, timeouts, bad frames)" \
  test "$(jq -n --argjson a "$g0" --argjson b "$g1" '($b.counters.evicted_pending > $a.counters.evicted_pending) and
     ($b.counters.handshake_timeouts > $a.counters.handshake_timeouts) and
     ($b.counters.protocol_errors.bad_length > $a.counters.protocol_errors.bad_length) and
     ($b.counters.handshake_failures >= $a.counters.handshake_failures + 12)')" = true
check "garbage/half-open: each logged with its reason" \
  bash -c "grep -q 'handshake timed out' '$WORK/gw.log' && grep -q 'handshakes pending' '$WORK/gw.log' && grep -q 'malformed' '$WORK/gw.log'"

# ---- 4. An outage longer than the hold time (3 s, after the 3 s dead interval).
$TB exec inet "$UDP_PROBE" send --to 198.18.10.2:9400 --count 800 --size 200 --rate 100 >/dev/null &
sp=$!
sleep 0.5
$TB set dsl state=blackhole >/dev/null; $TB set lte state=blackhole >/dev/null
sleep 8
$TB set dsl state=up >/dev/null; $TB set lte state=up >/dev/null
wait "$sp"
new_sid=""
for _ in $(seq 150); do
  new_sid=$(status_json gw | jq -r '.sessions[0].session_id // empty')
  [[ -n $new_sid && $new_sid != "$sid" ]] && break
  sleep 0.1
done
g=$(status_json gw)
echo "# hold expiry: gateway $(jq -c '.counters | {sessions_created, sessions_expired, drop_session_ended, drop_buffer_age}' <<<"$g")"
grep -m1 "not resumed within" "$WORK/gw.log" | sed 's/^/# /'
check "hold expiry: the gateway destroyed the session and counted what it dropped" \
  test "$(jq -r '.counters.sessions_expired >= 1 and (.counters.drop_session_ended + .counters.drop_buffer_age) > 0' <<<"$g")" = true
check "hold expiry: the CPE came back under a new session ($sid -> $new_sid)" test -n "$new_sid" -a "$new_sid" != "$sid"

# ---- 5. A clean stop leaves the table at once.
kill -TERM "$CPE_PID"; wait "$CPE_PID"
sleep 0.2
check "clean stop: the CPE is gone from the gateway's table within 200 ms" \
  test "$(status_json gw | jq -r '.sessions | length')" -eq 0
finish
