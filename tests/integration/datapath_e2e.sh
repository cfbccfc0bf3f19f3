#!/usr/bin/env bash
# End to end through the testbed: tunneld client in cpe, server in gw, UDP
# from lan to inet and back, IPv4 and IPv6, two WAN paths; captures on the
# WAN links hold none of the payload in clear (unless --integrity-only);
# a clean stop, and a stop because the TUN was deleted.
source "$(dirname "$0")/lib.sh"

$TB up fast >"$WORK/testbed.log" 2>&1 || { not_ok "testbed up"; finish; }
start_tunnel
check "client has two established subflows (one per path)" wait_subflows cpe 2 15
check "server sees two established subflows" wait_subflows gw 2 5
subflow_locals=$(status_json cpe | jq -r '[.sessions[0].connection.subflow[] | select(.established) | .local | split(":")[0]] | sort | join(" ")')
check "one subflow leaves through each path ($subflow_locals)" test "$subflow_locals" = "198.18.1.1 198.18.2.1"
check "policy routing installed" install_routing

for fam in 4 6; do
  if [[ $fam == 4 ]]; then inet=198.18.20.2; lan=198.18.10.2; else inet=fd00:20::2; lan=fd00:10::2; fi
  for dir in up down; do
    if [[ $dir == up ]]; then r=$(probe lan inet $inet 1000 64-1472 2000); else r=$(probe inet lan $lan 1000 64-1472 2000); fi
    check "IPv$fam $dir: 1000 datagrams of 64..1472 bytes arrive exactly once, intact ($(jnum '"unique \(.unique) dup \(.duplicates) corrupt \(.corrupt)"' "$r"))" \
      test "$(jnum '.unique == 1000 and .duplicates == 0 and .corrupt == 0 and .received == 1000' "$r")" = true
  done
done

r=$(probe lan inet 198.18.20.2 20 1472 200 9001)
check "a 1472-byte UDP payload (1500-byte IPv4 packet, the TUN MTU) travels whole" \
  test "$(jnum '.unique == 20 and .corrupt == 0' "$r")" = true

c=$(status_json cpe)
g=$(status_json gw)
check "sender counted its frames, receiver wrote them to its TUN, no drops" \
  test "$(jq -n --argjson c "$c" --argjson g "$g" '($c.counters.tx_packets >= 2020) and ($g.counters.tun_tx_packets >= 2020) and ($g.counters.tx_packets >= 2000) and
     ($g.counters.drop_tun_write == 0) and ($c.counters.drop_queue_full == 0) and ($g.counters.rx_missing == 0) and
     ($g.counters.rx_duplicates == 0)')" = true
check "batching: no more send() calls than frames (data, ACK, heartbeat) on the CPE" \
  test "$(jq -r '.counters.send_calls <= .counters.tx_packets + .counters.tx_heartbeats + .counters.acks_sent' <<<"$c")" = true

# Non-UDP into the TUN is counted and dropped, never carried.
before=$(jq -r '.counters.drop_non_udp' <<<"$c")
gw_before=$(jq -r '.counters.rx_packets' <<<"$g")
$TB exec cpe ping -c 5 -i 0.05 -W 1 198.18.100.2 >/dev/null 2>&1
after=$(status_json cpe | jq -r '.counters.drop_non_udp')
gw_after=$(status_json gw | jq -r '.counters.rx_packets')
check "ICMP into the TUN is dropped and counted ($before -> $after), not carried" \
  test $((after - before)) -ge 5 -a "$gw_after" -eq "$gw_before"

# Packets that wait together share DATA frames, their headers compressed
# (protocol 3). The sending daemon is paused (SIGSTOP) while 250 datagrams
# reach its TUN, so it reads them in batches when it resumes: most go as
# compressed records. Every one must still arrive exactly once, byte for byte.
for fam in 4 6; do
  if [[ $fam == 4 ]]; then inet=198.18.20.2; lan=198.18.10.2; bind=0.0.0.0:9003; else inet=fd00:20::2; lan=fd00:10::2; bind=[::]:9003; fi
  for dir in up down; do
    if [[ $dir == up ]]; then from=lan to=inet addr=$inet sender=cpe pid=$CPE_PID; else from=inet to=lan addr=$lan sender=gw pid=$GW_PID; fi
    [[ $fam == 6 ]] && addr="[$addr]"
    s0=$(status_json $sender)
    $TB exec $to "$UDP_PROBE" recv --bind "$bind" --count 250 --idle-timeout 3000 --max-time 20000 >"$WORK/batch.json" &
    rp=$!
    for _ in $(seq 50); do grep -q ready "$WORK/batch.json" 2>/dev/null && break; sleep 0.05; done
    kill -STOP "$pid"
    $TB exec $from "$UDP_PROBE" send --to "$addr:9003" --count 250 --size 64-1472 --rate 2500 >/dev/null
    kill -CONT "$pid"
    wait "$rp"
    r=$(tail -n 1 "$WORK/batch.json")
    s1=$(status_json $sender)
    d=$(jq -cn --argjson a "$s0" --argjson b "$s1" '{p: ($b.counters.tx_packets - $a.counters.tx_packets),
      f: ($b.counters.tx_frames - $a.counters.tx_frames), z: ($b.counters.tx_compressed - $a.counters.tx_compressed)}')
    check "IPv$fam $dir, read in batches: 250 datagrams intact, exactly once ($(jnum '"unique \(.unique) dup \(.duplicates) corrupt \(.corrupt)"' "$r"))" \
      test "$(jnum '.unique == 250 and .duplicates == 0 and .corrupt == 0 and .received == 250' "$r")" = true
    check "IPv$fam $dir: they shared frames, most compressed (sent $(jq -r '"\(.p) in \(.f) frames, \(.z) compressed"' <<<"$d"))" \
      test "$(jq -r '.p >= 250 and .f < .p / 4 and .z >= 150' <<<"$d")" = true
  done
done

# Offered load above one path's rate: both subflows carry a fair share.
$TB set dsl rate=20mbit >/dev/null && $TB set lte rate=20mbit >/dev/null
c0=$(status_json cpe)
r=$(probe lan inet 198.18.20.2 9000 1200 3000 9002)   # ~29 Mbit/s for 3 s against 2 x 20 Mbit/s
c1=$(status_json cpe)
shares=$(jq -cn --argjson a "$c0" --argjson b "$c1" '
  [$b.sessions[0].connection.subflow[] as $s | ($a.sessions[0].connection.subflow[] | select(.local == $s.local) | .bytes_sent) as $old
   | {local: $s.local, d: ($s.bytes_sent - $old)}] as $d
  | ($d | map(.d) | add) as $t | $d | map(.d / $t * 100 | floor)')
echo "# per-subflow share of bytes under 29 Mbit/s over 2 x 20 Mbit/s: $shares; receiver: $r"
check "each subflow carries at least 25% when load exceeds one path ($shares)" \
  test "$(jq -r 'length == 2 and all(. >= 25)' <<<"$shares")" = true
g1=$(status_json gw)
check "gateway wrote same-flow datagrams as UDP GSO batches ($(jq -r '"\(.counters.tun_tx_packets) packets in \(.counters.tun_writes) writes"' <<<"$g1"))" \
  test "$(jq -r '.counters.tun_writes < .counters.tun_tx_packets' <<<"$g1")" = true
check "that load arrives with under 2% loss ($(jnum '.lost' "$r") lost)" test "$(jnum '.lost < 180' "$r")" = true

# A subflow that closes is rebuilt: reset the LTE subflow from the gateway.
$TB exec gw ss -K -tn dst 198.18.2.1 >/dev/null 2>&1
sleep 0.2
n_after_kill=$(status_json cpe | jq -r '.sessions[0].connection.subflows')
check "killing the LTE subflow leaves one ($n_after_kill)" test "$n_after_kill" -eq 1
check "the client rebuilds the LTE subflow" wait_subflows cpe 2 8
check "and says so in its log" grep -q "path lte: no subflow, endpoint .* rebuilt" "$WORK/cpe.log"

# Garbage on the server's port: that connection is refused with a logged
# reason and a counter; the established CPE does not notice.
conns_before=$(status_json cpe | jq -r '.counters.connections')
printf 'GET / HTTP/1.0\r\n\r\n' | $TB exec lan timeout 3 socat -u - TCP:198.18.0.1:7000 2>/dev/null
sleep 0.5
check "garbage is refused with a logged reason" grep -q "failed: malformed frame: bad_version" "$WORK/gw.log"
check "garbage is counted (protocol_errors.bad_version)" \
  test "$(status_json gw | jq -r '.counters.protocol_errors.bad_version')" -ge 1
check "server still running" kill -0 "$GW_PID"
check "the established CPE kept its connection" test "$(status_json cpe | jq -r '.counters.connections')" -eq "$conns_before"

# Nothing in clear on the WAN: while datagrams with a distinctive payload
# cross the tunnel, captures on both of the CPE's WAN links hold none of it,
# and a capture on the CPE's TUN (where the datagrams are in clear) holds it.
CANARY="tunneld-canary-0c7e9b"
CANARY_N=200
# capture_start NAME HOST IF...: tcpdump on each IF, whole packets, no filter, into $WORK/NAME.IF.pcap.
capture_start() {
  local name=$1 host=$2 ifc; shift 2
  CAP_PIDS=()
  for ifc in "$@"; do
    $TB exec "$host" tcpdump -Z root -i "$ifc" -n -s 0 -U -w "$WORK/$name.$ifc.pcap" 2>"$WORK/$name.$ifc.err" &
    CAP_PIDS+=($!)
    PIDS+=($!)
    for _ in $(seq 50); do grep -q "listening on" "$WORK/$name.$ifc.err" 2>/dev/null && break; sleep 0.1; done
  done
}
capture_stop() { kill -INT "${CAP_PIDS[@]}" 2>/dev/null; wait "${CAP_PIDS[@]}" 2>/dev/null; }
# occurrences FILE...: how often the canary appears in the files' bytes.
occurrences() { cat "$@" | grep -a -o "$CANARY" | wc -l; }
# send_canaries: CANARY_N datagrams of 840 bytes (the canary 30 times) from
# lan to inet; prints how many arrived.
send_canaries() {
  $TB exec inet python3 - "$CANARY" >"$WORK/canary.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.20.2", 9010))
print("ready", flush=True)
s.settimeout(2)
n = 0
try:
    while True:
        if sys.argv[1].encode() in s.recv(65535):
            n += 1
except socket.timeout:
    pass
print(n, flush=True)
PY
  local rp=$!
  for _ in $(seq 50); do grep -q ready "$WORK/canary.out" 2>/dev/null && break; sleep 0.05; done
  $TB exec lan python3 - "$CANARY" "$CANARY_N" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto((sys.argv[1].encode() + b"-%05d-" % i) * 30, ("198.18.20.2", 9010))
    time.sleep(0.002)
PY
  wait "$rp"
  tail -n 1 "$WORK/canary.out"
}
if command -v tcpdump >/dev/null; then
  capture_start enc cpe dsl lte ha0
  got=$(send_canaries)
  capture_stop
  wan_bytes=$(cat "$WORK"/enc.dsl.pcap "$WORK"/enc.lte.pcap | wc -c)
  check "the tunnel carried the $CANARY_N marked datagrams ($got arrived)" test "$got" -eq "$CANARY_N"
  check "the WAN captures hold their bytes ($wan_bytes bytes on dsl and lte, at least $((CANARY_N * 840)))" \
    test "$wan_bytes" -ge $((CANARY_N * 840))
  check "the capture on the TUN finds the payload in clear ($(occurrences "$WORK"/enc.ha0.pcap) times)" \
    test "$(occurrences "$WORK"/enc.ha0.pcap)" -ge $((CANARY_N * 30))
  check "the WAN captures hold none of it in clear ($(occurrences "$WORK"/enc.dsl.pcap "$WORK"/enc.lte.pcap) times)" \
    test "$(occurrences "$WORK"/enc.dsl.pcap "$WORK"/enc.lte.pcap)" -eq 0
else
  not_ok "tcpdump is not installed (scripts/install-deps.sh): no capture of the WAN links"
fi

# Clean shutdown removes what the daemon added.
kill -TERM "$CPE_PID"; wait "$CPE_PID"; rc=$?
check "client exits 0 on SIGTERM" test $rc -eq 0
check "client removed its MPTCP endpoints" test -z "$($TB exec cpe ip mptcp endpoint show)"
check "client's TUN is gone" bash -c "! $TB exec cpe ip link show ha0 >/dev/null 2>&1"
sleep 0.3
check "server saw the CLOSE and dropped the session at once" \
  test "$(grep -c 'closed by the CPE' "$WORK/gw.log")" -eq 1 -a "$(status_json gw | jq -r '.sessions | length')" -eq 0
stopped_lines=$(grep -c ' stopped$' "$WORK/cpe.log")
check "its last log line was written before it exited" test "$stopped_lines" -eq 1

# A CPE with --integrity-only: the same WAN capture then does find the
# payload (so the check above can fail).
start_cpe --integrity-only
check "an --integrity-only CPE connects" wait_subflows cpe 2 15
install_routing
if command -v tcpdump >/dev/null; then
  capture_start clear cpe dsl lte
  got=$(send_canaries)
  capture_stop
  check "with --integrity-only the WAN captures hold the payload in clear ($(occurrences "$WORK"/clear.dsl.pcap "$WORK"/clear.lte.pcap) times, $got datagrams)" \
    test "$(occurrences "$WORK"/clear.dsl.pcap "$WORK"/clear.lte.pcap)" -ge $((CANARY_N * 10))
fi

# The TUN deleted under the running CPE: it stops at once, says why, exits
# 1 and removes its MPTCP endpoints (an in-process test checks that the
# loop then goes idle).
check "the CPE added MPTCP endpoints" test -n "$($TB exec cpe ip mptcp endpoint show)"
$TB exec cpe ip link del ha0
t0=$(date +%s%N)
for _ in $(seq 50); do kill -0 "$CPE_PID" 2>/dev/null || break; sleep 0.1; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if kill -0 "$CPE_PID" 2>/dev/null; then
  not_ok "the CPE exits within 5 s of its TUN's deletion (still running)"
else
  wait "$CPE_PID"; rc=$?
  check "the CPE exits within 5 s of its TUN's deletion, with status 1 (after $ms ms, status $rc)" test "$rc" -eq 1
fi
check "and says why" grep -q "tunneld: the TUN device is gone (" "$WORK/cpe.log"
check "and logs its stop" test "$(grep -c ' stopped$' "$WORK/cpe.log")" -eq $((stopped_lines + 1))
check "and removed its MPTCP endpoints" test -z "$($TB exec cpe ip mptcp endpoint show)"
finish
