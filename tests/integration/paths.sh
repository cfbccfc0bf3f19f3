#!/usr/bin/env bash
# Paths that come and go (issue 14), each during a 1000 packets/s stream each
# way (lan <-> inet, 200-byte datagrams), each on a fresh testbed:
#   a. join: LTE has no IPv4 address when the CPE starts; it gets one (and its
#      source route, as an ip-up hook would) mid-stream and joins.
#   b. renumbering: DSL's IPv4 address is replaced by one in another subnet
#      (ha-routing.sh path down/up moves the rule and route, as a PPP redial's
#      hooks would); DSL carries again, nothing lost.
#   c. one family per path: DSL IPv4 only, LTE IPv6 only, a dual-stack
#      gateway: two subflows, nothing lost when either path is cut, each
#      carries again when it returns (LTE, the other family, by a re-dial).
#   d. link down on the path carrying the stream (hybrid profile): carrier
#      loss (peer down), then the CPE's own interface set down; the gaps.
#   e. both paths down when the CPE starts: it comes up when LTE does.
# Times are measured by polling `tunneld status` (about every 60 ms) and
# printed as "# ..." lines; the checks hold them only to generous bounds.
source "$(dirname "$0")/lib.sh"
[[ -x ${LINKEM:-$ROOT/build/netns-testbed/linkem} ]] || skip_all "build first: linkem"
export LINKEM="${LINKEM:-$ROOT/build/netns-testbed/linkem}"
command -v jq >/dev/null || skip_all "needs jq"
HA="$ROOT/scripts/ha-routing.sh"

now_ms() { date +%s%3N; }

# fresh PROFILE: stops both daemons, builds the testbed again.
fresh() {
  local p
  for p in ${CPE_PID:-} ${GW_PID:-}; do
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    wait "$p" 2>/dev/null
  done
  CPE_PID='' GW_PID=''
  $TB down >/dev/null 2>&1
  echo "=== $2" | tee -a "$WORK/cpe.log" >>"$WORK/gw.log"
  $TB up "$1" >>"$WORK/testbed.log" 2>&1
}

# path_line NAME: "STATE ADDR ADDR..." of the CPE's path NAME.
path_line() {
  status_json cpe | jq -r --arg n "$1" '.paths[]? | select(.name == $n) | ([.state] + .addresses) | join(" ")' 2>/dev/null
}
# wait_path NAME STATE T0 TIMEOUT_S [ADDR]: until path NAME is STATE (with
# ADDR among its addresses); WAITED_MS: from T0 (ms) to then.
wait_path() {
  local name=$1 want=$2 t0=$3 t=$4 addr=${5:-} s=""
  for _ in $(seq $((t * 30))); do
    s=$(path_line "$name")
    if [[ "$s " == "$want "* && ( -z $addr || " $s " == *" $addr "* ) ]]; then
      WAITED_MS=$(($(now_ms) - t0))
      return 0
    fi
    (($(now_ms) - t0 > t * 1000)) && break
    sleep 0.03
  done
  WAITED_MS=$(($(now_ms) - t0))
  echo "# path $name: '$s' after ${WAITED_MS} ms, wanted $want${addr:+ with $addr}"
  return 1
}
# wait_connected T0 TIMEOUT_S: until the CPE's session is connected; WAITED_MS from T0.
wait_connected() {
  local t0=$1 t=$2
  for _ in $(seq $((t * 30))); do
    [[ $(status_json cpe | jq -r '.sessions[0].state' 2>/dev/null) == connected ]] && { WAITED_MS=$(($(now_ms) - t0)); return 0; }
    (($(now_ms) - t0 > t * 1000)) && break
    sleep 0.03
  done
  WAITED_MS=$(($(now_ms) - t0))
  return 1
}

# stream_start PORT COUNT: COUNT datagrams at 1000/s each way: lan -> inet on
# PORT, inet -> lan on PORT+1.
stream_start() {
  S_PORT=$1 S_COUNT=$2
  $TB exec inet "$UDP_PROBE" recv --bind "0.0.0.0:$S_PORT" --count "$S_COUNT" --idle-timeout 8000 \
    --max-time 60000 >"$WORK/up.json" 2>/dev/null &
  S_UP_RP=$!
  $TB exec lan "$UDP_PROBE" recv --bind "0.0.0.0:$((S_PORT + 1))" --count "$S_COUNT" --idle-timeout 8000 \
    --max-time 60000 >"$WORK/down.json" 2>/dev/null &
  S_DOWN_RP=$!
  for _ in $(seq 50); do grep -q ready "$WORK/up.json" && grep -q ready "$WORK/down.json" && break; sleep 0.05; done
  $TB exec lan "$UDP_PROBE" send --to "198.18.20.2:$S_PORT" --count "$S_COUNT" --size 200 --rate 1000 >/dev/null 2>&1 &
  S_UP_SP=$!
  $TB exec inet "$UDP_PROBE" send --to "198.18.10.2:$((S_PORT + 1))" --count "$S_COUNT" --size 200 --rate 1000 \
    >/dev/null 2>&1 &
  S_DOWN_SP=$!
  S_T0=$(now_ms)
}
# stream_end TAG MAX_LOST_UP MAX_LOST_DOWN: waits for the stream, prints it,
# checks that at most MAX_LOST of each direction were lost and none arrived
# twice. GAP_UP, GAP_DOWN: the longest gaps (ms).
stream_end() {
  local tag=$1 d r max
  wait "$S_UP_SP" "$S_DOWN_SP"
  wait "$S_UP_RP" "$S_DOWN_RP"
  S_UP=$(tail -n 1 "$WORK/up.json")
  S_DOWN=$(tail -n 1 "$WORK/down.json")
  GAP_UP=$(jq -r '.max_gap_ms // "?"' <<<"$S_UP" 2>/dev/null)
  GAP_DOWN=$(jq -r '.max_gap_ms // "?"' <<<"$S_DOWN" 2>/dev/null)
  echo "# $tag: cpe $(status_json cpe | jq -c '.counters | {connections, resumes, replayed, drop_queue_full, drop_buffer_full, drop_buffer_age}' 2>/dev/null)"
  for d in up down; do
    if [[ $d == up ]]; then r=$S_UP max=$2; else r=$S_DOWN max=$3; fi
    echo "# $tag, ${d}stream: $(jq -c '{received, unique, lost, duplicates, reordered, max_gap_ms, lat_p99_ms}' <<<"$r" 2>/dev/null)"
    check "$tag, ${d}stream: at most $max of $S_COUNT lost, none twice ($(jq -c '{lost, duplicates, max_gap_ms}' <<<"$r" 2>/dev/null))" \
      test "$(jq -r --argjson m "$max" --argjson n "$S_COUNT" \
        '.unique >= $n - $m and .duplicates == 0 and .corrupt == 0' <<<"$r" 2>/dev/null)" = true
  done
}
# cpe_diag: what the CPE sees (after a failed check).
cpe_diag() {
  echo "# cpe paths: $(status_json cpe | jq -c '.paths')"
  echo "# cpe subflows: $(status_json cpe | jq -c '[.sessions[0].connection.subflow[]? | {local, remote, established}]')"
  $TB exec cpe ip mptcp endpoint show | sed 's/^/# cpe endpoint: /'
}

# ---------------------------------------------------------------- a. join
fresh fast "a. join"
$TB addr lte del 4
start_tunnel
wait_subflows cpe 1 15 || { not_ok "join: tunnel up over DSL"; cpe_diag; finish; }
install_routing || { not_ok "policy routing"; finish; }
check "join: LTE without an address is waiting ($(path_line lte))" test "$(path_line lte)" = "waiting"
stream_start 9600 6000
sleep 2
t0=$(now_ms)
$TB addr lte add 4
$TB exec cpe "$HA" path up --dev lte --table 102 --pref 102 --addr 198.18.2.1 --via 198.18.2.2 >/dev/null
wait_path lte carrying "$t0" 5 198.18.2.1 || cpe_diag
join_ms=$WAITED_MS
echo "# join: address added -> LTE carrying a subflow: $join_ms ms"
check "join: LTE carries a subflow within 5 s of its address ($join_ms ms)" test "$(path_line lte)" = "carrying 198.18.2.1"
$TB exec cpe "$TUNNELD" status --socket "$WORK/cpe.sock" | grep '^path ' | sed 's/^/# status: /'
stream_end "join" 0 0

# ---------------------------------------------------------------- b. renumbering
fresh fast "b. renumbering"
start_tunnel
wait_subflows cpe 2 15 || { not_ok "renumbering: tunnel up with two subflows"; cpe_diag; finish; }
install_routing >/dev/null
stream_start 9610 7000
sleep 2
# A redial: the old address goes (ip-down hook), a new one in another subnet comes (ip-up hook).
$TB addr dsl del 4
$TB exec cpe "$HA" path down --dev dsl --table 101 --pref 101 --family 4 >/dev/null
sleep 1
t0=$(now_ms)
$TB addr dsl add 4 198.18.11
$TB exec cpe "$HA" path up --dev dsl --table 101 --pref 101 --addr 198.18.11.1 --via 198.18.11.2 >/dev/null
$TB exec cpe ip route replace default via 198.18.11.2 dev dsl  # pppd's defaultroute
wait_path dsl carrying "$t0" 5 198.18.11.1 || cpe_diag
renum_ms=$WAITED_MS
echo "# renumbering: new address added -> DSL carrying a subflow from it: $renum_ms ms"
check "renumbering: DSL carries a subflow from its new address within 5 s ($renum_ms ms)" \
  test "$(path_line dsl)" = "carrying 198.18.11.1"
eps=$($TB exec cpe ip mptcp endpoint show)
check "renumbering: the old address's endpoint is gone, the new one is there" \
  test "$(grep -c '198\.18\.1\.1 ' <<<"$eps")" -eq 0 -a "$(grep -c '198\.18\.11\.1 ' <<<"$eps")" -eq 1
stream_end "renumbering" 0 0

# ---------------------------------------------------------------- c. one family per path
fresh fast "c. one family per path"
$TB addr dsl del 6
$TB addr lte del 4
start_gateway --listen '[fd00::1]:7000'
start_cpe --server '[fd00::1]:7000'
wait_subflows cpe 2 15 || cpe_diag
t0=$(now_ms)
wait_path dsl carrying "$t0" 5 >/dev/null; wait_path lte carrying "$t0" 5 >/dev/null
sf=$(status_json cpe | jq -r '[.sessions[0].connection.subflow[]? | select(.established) | .local] | join(" ")')
check "one family: DSL carries IPv4 only, LTE IPv6 only ($(path_line dsl); $(path_line lte))" \
  test "$(path_line dsl)" = "carrying 198.18.1.1" -a "$(path_line lte)" = "carrying fd00:2::1"
check "one family: two subflows, one per path ($sf)" \
  test "$(wc -w <<<"$sf")" -eq 2 -a "$(grep -c '198\.18\.1\.1' <<<"$sf")" -eq 1 -a "$(grep -c 'fd00:2::1' <<<"$sf")" -eq 1
install_routing >/dev/null
for cut in dsl lte; do
  stream_start $((9620 + 2 * ${#cut})) 5000
  sleep 2
  $TB set "$cut" state=down >/dev/null
  sleep 1.5
  $TB set "$cut" state=up >/dev/null
  t_back=$(now_ms)
  stream_end "one family, $cut cut" 0 0
  echo "# one family, $cut cut: longest gap up $GAP_UP ms, down $GAP_DOWN ms"
  wait_path "$cut" carrying "$t_back" 10 || cpe_diag
  echo "# one family: $cut carrying again $WAITED_MS ms after its carrier returned"
  if [[ $cut == dsl ]]; then
    check "one family: DSL (the first subflow's family) carries again after the cut ($(path_line dsl))" \
      test "$(path_line dsl)" = "carrying 198.18.1.1"
  else
    redials=$(status_json cpe | jq -r .counters.path_redials)
    check "one family: LTE (the other family) carries again after the cut, the CPE re-dialling for it ($(path_line lte); path_redials $redials)" \
      test "$(path_line lte)" = "carrying fd00:2::1" -a "$redials" -ge 1
  fi
done

# ---------------------------------------------------------------- d. link down
fresh hybrid "d. link down"
start_tunnel
wait_subflows cpe 2 15 || { not_ok "link down: tunnel up with two subflows"; cpe_diag; finish; }
install_routing >/dev/null
# sent_by PATH_ADDR: bytes the CPE sent on the subflow from that address.
sent_by() { status_json cpe | jq -r --arg a "$1" '[.sessions[0].connection.subflow[]? | select(.local | contains($a)) | .bytes_sent] | add // 0'; }
for how in carrier admin; do
  stream_start $((9630 + 2 * ${#how})) 5000
  sleep 1
  d0=$(sent_by 198.18.1.1) l0=$(sent_by 198.18.2.1)
  sleep 1
  d1=$(sent_by 198.18.1.1) l1=$(sent_by 198.18.2.1)
  cut=dsl; (((l1 - l0) > (d1 - d0))) && cut=lte
  echo "# link down ($how): in the second before, DSL carried $((d1 - d0)) bytes up, LTE $((l1 - l0)); cutting $cut"
  if [[ $how == carrier ]]; then
    $TB set "$cut" state=down >/dev/null  # the peer goes down: carrier loss
  else
    $TB exec cpe ip link set dev "$cut" down  # the CPE's own interface (not restored)
  fi
  sleep 2
  [[ $how == carrier ]] && $TB set "$cut" state=up >/dev/null
  stream_end "link down ($how, $cut)" 0 0
  echo "# link down ($how, $cut): longest gap upstream $GAP_UP ms, downstream $GAP_DOWN ms (target 300 ms)"
  eval "gap_$how='$GAP_UP/$GAP_DOWN'"
  check "link down ($how, $cut): the stream moved within 5 s (gaps $GAP_UP / $GAP_DOWN ms)" \
    awk -v a="$GAP_UP" -v b="$GAP_DOWN" 'BEGIN { exit !(a < 5000 && b < 5000) }'
  [[ $how == carrier ]] && { wait_path "$cut" carrying "$(now_ms)" 5 >/dev/null || cpe_diag; }
done

# ---------------------------------------------------------------- e. both paths down at start
fresh fast "e. both down at start"
start_gateway
$TB set dsl state=down >/dev/null
$TB set lte state=down >/dev/null
start_cpe
sleep 2
check "both down: the CPE runs, both paths down, no endpoint ($(path_line dsl); $(path_line lte))" \
  test "$(path_line dsl)" = "down" -a "$(path_line lte)" = "down" -a -z "$($TB exec cpe ip mptcp endpoint show)"
install_routing >/dev/null || { not_ok "both down: policy routing"; finish; }
stream_start 9650 6000
sleep 2
t0=$(now_ms)
$TB set lte state=up >/dev/null
wait_connected "$t0" 5
e_conn=$WAITED_MS
wait_path lte carrying "$t0" 5 || cpe_diag
e_carry=$WAITED_MS
echo "# both down: LTE up -> session connected $e_conn ms, LTE carrying $e_carry ms"
check "both down: the session is up within 5 s of the first path ($e_conn ms)" test "$e_conn" -lt 5000
sleep 1
t0=$(now_ms)
$TB set dsl state=up >/dev/null
wait_path dsl carrying "$t0" 5 || cpe_diag
echo "# both down: DSL up -> DSL carrying $WAITED_MS ms"
check "both down: DSL joins when it comes up ($WAITED_MS ms)" test "$(path_line dsl)" = "carrying 198.18.1.1"
# Upstream waits in the replay buffer; downstream has no session to go to
# until the CPE connects (the gateway drops it: no route).
stream_end "both down" 0 $((2000 + e_conn + 500))

echo "# summary: join $join_ms ms, renumbering $renum_ms ms, link-down gaps up/down: carrier $gap_carrier ms, admin $gap_admin ms; both-down start: connected $e_conn ms after the first path"
finish
