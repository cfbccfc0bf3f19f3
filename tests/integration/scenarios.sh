#!/usr/bin/env bash
# Real applications through the tunnel on the hybrid profile: iperf3 UDP at
# 80% of the paths' summed rate in each direction (goodput >= 95% of what was
# offered, both paths used), DNS (dnsmasq in inet, 200 dig queries from lan),
# and a SIP call with RTP (sipp uac_pcap in lan, uas with RTP echo in inet).
source "$(dirname "$0")/lib.sh"
[[ -x ${LINKEM:-$ROOT/build/netns-testbed/linkem} ]] || skip_all "build first: linkem"
export LINKEM="${LINKEM:-$ROOT/build/netns-testbed/linkem}"
for t in dnsmasq dig sipp iperf3; do command -v $t >/dev/null || skip_all "missing $t (scripts/install-deps.sh)"; done

# iperf3 asks for a 2 MiB socket buffer (-w), as a real-time receiver should
# behind a multipath tunnel: MPTCP delivers in order across a 10 ms and a
# 40+-10 ms path, so data arrives in bursts, and the default 208 KiB buffer
# overflows (6% lost at 40 Mbit/s). The kernel caps it at net.core.rmem_max,
# which is not per namespace: raise it for the test if lower, restore it after.
RMEM_OLD=$(sysctl -n net.core.rmem_max)
((RMEM_OLD >= 4 << 20)) || sysctl -qw net.core.rmem_max=$((4 << 20))
trap 'sysctl -qw net.core.rmem_max=$RMEM_OLD; cleanup' EXIT

$TB up hybrid >"$WORK/testbed.log" 2>&1 || { not_ok "testbed up"; finish; }
start_tunnel
wait_subflows cpe 2 15 || { not_ok "tunnel up with two subflows"; finish; }
install_routing || { not_ok "policy routing"; finish; }

# ---- iperf3 at 80% of the summed path rates, first: on a fresh connection.
# After a quiet spell with a loss or two (the DNS and SIP phases below), the
# LTE subflow took far longer than a 6 s run to grow back (BBR: its bandwidth
# estimate had decayed to the light load; cubic: ssthresh 7 after one loss),
# and downlink goodput fell to about 20 Mbit/s. docs/measurements.md, "Ramp-up
# after a quiet spell".
$TB exec inet iperf3 -s -B 198.18.20.2 -p 5201 >/dev/null 2>&1 &
PIDS+=($!)
$TB exec lan iperf3 -s -B 198.18.10.2 -p 5202 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do $TB exec inet ss -Hltn | grep -q ':5201' && $TB exec lan ss -Hltn | grep -q ':5202' && break; sleep 0.1; done
# iperf_run NAME CLIENT_NS SERVER_ADDR PORT RATE: JSON summary of a 6 s run.
iperf_run() {
  local ns=$2 addr=$3 port=$4 rate=$5 c0 c1 out
  c0=$(status_json cpe)
  out=$($TB exec "$ns" timeout 30 iperf3 -c "$addr" -p "$port" -u -b "$rate" -l 1200 -w 2M -t 6 --json 2>/dev/null)
  c1=$(status_json cpe)
  jq -cn --argjson o "${out:-{\}}" --argjson a "$c0" --argjson b "$c1" --arg dir "$1" '
    [$b.sessions[0].connection.subflow[] as $s
      | ([$a.sessions[0].connection.subflow[] | select(.local == $s.local) | (if $dir == "up" then .bytes_sent else .bytes_received end)] | first // 0) as $x
      | {local: ($s.local | split(":")[0]), mbit: (((if $dir == "up" then $s.bytes_sent else $s.bytes_received end) - $x) * 8 / 6 / 1e6 | . * 10 | floor / 10)}] as $paths
    | {goodput: (($o.end.sum_received.bits_per_second // 0) / 1e6 | . * 10 | floor / 10),
       lost_percent: ($o.end.sum_received.lost_percent // 100 | . * 100 | floor / 100), paths: $paths}'
}
down=$(iperf_run down inet 198.18.10.2 5202 40M)   # hybrid downlink: 20 + 30 Mbit/s
up=$(iperf_run up lan 198.18.20.2 5201 12M)        # hybrid uplink: 5 + 10 Mbit/s
echo "# iperf3 downlink at 40 of 50 Mbit/s: $down"
echo "# iperf3 uplink at 12 of 15 Mbit/s: $up"
check "iperf3 downlink at 80%: goodput >= 95% of 40 Mbit/s ($(jq -r .goodput <<<"$down") Mbit/s, lost $(jq -r .lost_percent <<<"$down")%)" \
  test "$(jq -r '.goodput >= 38' <<<"$down")" = true
check "iperf3 downlink: both paths carry traffic ($(jq -c .paths <<<"$down"))" \
  test "$(jq -r '(.paths | length) == 2 and all(.paths[]; .mbit >= 2)' <<<"$down")" = true
check "iperf3 uplink at 80%: goodput >= 95% of 12 Mbit/s ($(jq -r .goodput <<<"$up") Mbit/s, lost $(jq -r .lost_percent <<<"$up")%)" \
  test "$(jq -r '.goodput >= 11.4' <<<"$up")" = true
check "iperf3 uplink: both paths carry traffic ($(jq -c .paths <<<"$up"))" \
  test "$(jq -r '(.paths | length) == 2 and all(.paths[]; .mbit >= 1)' <<<"$up")" = true
# Both ends fix the connection's receive buffer (--socket-rcvbuf, default 4 MiB,
# reported doubled). With the kernel's autotuning, one run in four to ten hung
# at the start of the downlink run: a loss on LTE left a hole, the data behind
# it filled the 128 KiB the buffer starts with, and the kernel stopped moving
# data from the subflows, so nothing was readable until the dead interval
# reconnected (docs/measurements.md, "The kernel's MPTCP receive hang").
for h in cpe gw; do
  st=$(status_json $h)
  read -r rb res <<<"$(jq -r '"\(.sessions[0].connection.rcvbuf) \(.counters.resumes)"' <<<"$st")"
  check "$h: the connection held through both runs on an 8 MiB receive buffer (rcvbuf $rb, resumes $res)" \
    test "$rb" = 8388608 -a "$res" = 0
done
# ---- DNS
$TB exec inet dnsmasq --no-daemon --no-resolv --no-hosts --user=root --bind-interfaces \
  --listen-address=198.18.20.2 --address=/example.test/198.18.20.99 --pid-file="$WORK/dnsmasq.pid" \
  >"$WORK/dnsmasq.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do $TB exec inet ss -Hlun | grep -q '198.18.20.2:53' && break; sleep 0.1; done
for i in $(seq 200); do echo "host$i.example.test A"; done >"$WORK/queries"
g0=$(status_json gw | jq -r .counters.rx_packets)
$TB exec lan timeout 120 dig @198.18.20.2 +short +time=2 +tries=3 -f "$WORK/queries" >"$WORK/answers" 2>&1
answered=$(grep -c '^198\.18\.20\.99$' "$WORK/answers")
g1=$(status_json gw | jq -r .counters.rx_packets)
check "DNS: 200 dig queries from lan, all answered through the tunnel ($answered answered, gateway received $((g1 - g0)) frames)" \
  test "$answered" -eq 200 -a $((g1 - g0)) -ge 200

# ---- SIP with RTP
mkdir -p "$WORK/sip/pcap" && ln -sf /usr/share/sip-tester/g711a.pcap "$WORK/sip/pcap/g711a.pcap"
ln -sf /usr/share/sip-tester/dtmf_2833_1.pcap "$WORK/sip/pcap/dtmf_2833_1.pcap"
$TB exec inet timeout 90 sipp -sn uas -i 198.18.20.2 -p 5060 -mi 198.18.20.2 -rtp_echo -m 1 -bg \
  -trace_err -error_file "$WORK/uas.err" >/dev/null 2>&1
g0=$(status_json gw | jq -r .counters.rx_packets)
(cd "$WORK/sip" && $TB exec lan timeout 90 sipp -sn uac_pcap -i 198.18.10.2 -p 5070 -mi 198.18.10.2 \
  -m 1 -timeout 60s -timeout_error -trace_stat -stf "$WORK/uac.csv" 198.18.20.2:5060 >"$WORK/uac.log" 2>&1)
rc=$?
g1=$(status_json gw | jq -r .counters.rx_packets)
ok_calls=$(tail -n 1 "$WORK/uac.csv" 2>/dev/null | awk -F';' '{print $16}')
check "SIP: a call with RTP from lan to inet completes (sipp exit $rc, successful calls ${ok_calls:-?}, $((g1 - g0)) frames up the tunnel)" \
  test "$rc" -eq 0 -a $((g1 - g0)) -ge 100
pkill -f "sipp -sn uas -i 198.18.20.2" 2>/dev/null

finish
