#!/usr/bin/env bash
# The link emulator does what it is told: RTT within 10% (or 1 ms) of twice
# the configured one-way delay, rate within 10% of the tbf rate, loss close to
# the configured fraction, and parameters change at run time without restart.
source "$(dirname "$0")/lib.sh"
LINKEM_BIN="${LINKEM:-$ROOT/build/netns-testbed/linkem}"
[[ -x $LINKEM_BIN ]] || skip_all "build first: $LINKEM_BIN"
export LINKEM="$LINKEM_BIN"

$TB up fast >"$WORK/testbed.log" 2>&1 || { not_ok "testbed up"; finish; }

# median RTT in ms of N pings from cpe to ADDR
rtt_median() {
  $TB exec cpe ping -n -c "$2" -i 0.02 -W 2 "$1" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | tail -n +2 |
    sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
within() {  # within MEASURED WANT FRACTION ABS
  awk -v m="$1" -v w="$2" -v f="$3" -v a="$4" 'BEGIN { d = m - w; if (d < 0) d = -d; exit !((d <= w * f) || (d <= a)) }'
}

$TB set dsl delay=20ms >/dev/null
r=$(rtt_median 198.18.1.2 40)
check "dsl delay=20ms each way: median RTT $r ms is within 10% or 1 ms of 40 ms" within "$r" 40 0.10 1
pid1=$(cat /run/tunneld-testbed/$PREFIX.dsl.linkem.pid)

$TB set dsl up.delay=5ms down.delay=45ms >/dev/null
r=$(rtt_median 198.18.1.2 40)
pid2=$(cat /run/tunneld-testbed/$PREFIX.dsl.linkem.pid)
check "changed at run time to 5 ms up + 45 ms down: median RTT $r ms within 10% of 50 ms" within "$r" 50 0.10 1
check "the emulator was not restarted for it" test "$pid1" = "$pid2"

$TB set lte delay=20ms jitter=5ms >/dev/null
r=$(rtt_median 198.18.2.2 60)
min=$($TB exec cpe ping -n -c 30 -i 0.05 198.18.2.2 | sed -n 's/.*min\/avg\/max\/mdev = \([0-9.]*\)\/.*/\1/p')
check "lte delay=20ms jitter=5ms: median RTT $r ms within 15% of 40 ms, min $min ms >= 30 ms" \
  bash -c "$(declare -f within); within $r 40 0.15 1 && awk -v m=$min 'BEGIN{exit !(m >= 30)}'"

# Rate: 30 Mbit/s of UDP offered into a 20 Mbit/s downlink.
$TB set dsl delay=0 down.rate=20mbit >/dev/null
$TB exec gw iperf3 -s -1 -B 198.18.1.2 -p 5401 >/dev/null 2>&1 &
srv=$!
for _ in $(seq 50); do $TB exec gw ss -Hltn "sport = :5401" | grep -q . && break; sleep 0.1; done
out=$($TB exec cpe timeout 20 iperf3 -c 198.18.1.2 -p 5401 -R -u -b 30M -l 1200 -t 3 --json)
wait $srv
# On the wire each 1200-byte payload is 1200 + 8 UDP + 20 IP + 14 Ethernet bytes.
wire=$(jq -r '.end.sum_received.bits_per_second * 1242 / 1200 / 1e6' <<<"$out")
check "dsl down.rate=20mbit: measured $(printf %.1f "$wire") Mbit/s on the wire, within 10% of 20" within "$wire" 20 0.10 0

# Loss: 5% in one direction, 4000 datagrams.
$TB set lte jitter=0 up.loss=5% >/dev/null
$TB exec gw "$UDP_PROBE" recv --bind 198.18.2.2:9400 --count 4000 --idle-timeout 2000 >"$WORK/loss.json" &
rp=$!
for _ in $(seq 50); do grep -q ready "$WORK/loss.json" 2>/dev/null && break; sleep 0.05; done
$TB exec cpe "$UDP_PROBE" send --to 198.18.2.2:9400 --count 4000 --size 200 --rate 4000 >/dev/null
wait $rp
lost=$(tail -n 1 "$WORK/loss.json" | jq -r '.lost')
check "lte up.loss=5%: $lost of 4000 lost (expected 200, accepted 120..280)" test "$lost" -ge 120 -a "$lost" -le 280

$TB set lte state=blackhole >/dev/null
check "blackhole drops everything" bash -c "! $TB exec cpe ping -c 3 -i 0.2 -W 1 198.18.2.2 >/dev/null"
$TB set lte state=up >/dev/null
check "and state=up brings it back" bash -c "$TB exec cpe ping -c 3 -i 0.2 -W 2 198.18.2.2 >/dev/null"
finish
