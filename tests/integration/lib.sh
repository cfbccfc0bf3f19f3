# Shared helpers for namespace tests. Source it; it sets a cleanup trap.
# Prints TAP ("ok N - ...", "not ok N - ..."); exits 77 (ctest skip) when the
# machine cannot run namespace tests, 1 when any check failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TESTBED="$ROOT/netns-testbed/testbed"
TUNNELD="${TUNNELD:-$ROOT/build/tunneld/tunneld}"
UDP_PROBE="${UDP_PROBE:-$ROOT/build/netns-testbed/udp-probe}"
PREFIX="t$(( RANDOM % 100000 ))"
WORK="$(mktemp -d "/tmp/tunneld-test.XXXXXX")"
TB="$TESTBED --prefix $PREFIX"
N=0
FAILED=0
PIDS=()

skip_all() { echo "1..0 # SKIP $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip_all "needs root (network namespaces)"
[[ -x $TUNNELD && -x $UDP_PROBE ]] || skip_all "build first: $TUNNELD, $UDP_PROBE"
ip netns add "${PREFIX}-probe" 2>/dev/null || skip_all "cannot create network namespaces"
ip netns del "${PREFIX}-probe"
[[ -c /dev/net/tun ]] || skip_all "no /dev/net/tun (CONFIG_TUN)"

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  $TB down >/dev/null 2>&1
  if ((FAILED)) || [[ $rc -ne 0 ]]; then
    echo "# logs kept in $WORK"
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "# --- $f"; tail -n 30 "$f" | sed 's/^/# /'; }; done
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
check() {  # check "description" CONDITION...; returns the condition's result
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi
}
finish() { echo "1..$N"; ((FAILED == 0)); exit $?; }

# make_key FILE: a fresh random key (64 hex digits), mode 600.
make_key() {
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"; echo >>"$1")
}
# make_gateway_keys FILE ID KEY_FILE PREFIX[,PREFIX...]: a gateway key file
# with one line binding ID, with the key in KEY_FILE, to the prefixes; mode 600.
make_gateway_keys() {
  (umask 077; printf '%s %s %s\n' "$2" "$(tr -d ' \n' <"$3")" "$4" >"$1")
}
make_key "$WORK/psk"
CPE_PREFIXES=(--prefix 198.18.10.0/24 --prefix fd00:10::/64)
CPE_PATHS=(--path dsl --path lte)  # a test may set rates (--path dsl,up=5mbit,down=20mbit)
make_gateway_keys "$WORK/gw.keys" cpe1 "$WORK/psk" 198.18.10.0/24,fd00:10::/64

# start_gateway [extra server flags...] / start_cpe [extra client flags...]:
# each end with the testbed's addresses; the CPE's key is $WORK/psk, the
# gateway's key file $WORK/gw.keys binds cpe1 to CPE_PREFIXES.
start_gateway() {
  $TB exec gw "$TUNNELD" server --listen 198.18.0.1:7000 --tun ha0 --tun-address 198.18.100.2/30 \
    --tun-address fd00:100::2/64 --status-socket "$WORK/gw.sock" --stats-interval 500 --psk-file "$WORK/gw.keys" \
    "$@" >>"$WORK/gw.log" 2>&1 &
  PIDS+=($!)
  GW_PID=$!
}
start_cpe() {
  $TB exec cpe "$TUNNELD" client --server 198.18.0.1:7000 --tun ha0 "${CPE_PATHS[@]}" \
    --tun-address 198.18.100.1/30 --tun-address fd00:100::1/64 --status-socket "$WORK/cpe.sock" \
    --stats-interval 500 --path-retry 1000 --id cpe1 "${CPE_PREFIXES[@]}" --psk-file "${CPE_PSK:-$WORK/psk}" \
    "$@" >>"$WORK/cpe.log" 2>&1 &
  PIDS+=($!)
  CPE_PID=$!
}
# start_tunnel [extra client flags...]: both ends.
start_tunnel() {
  start_gateway
  start_cpe "$@"
}

# status_json cpe|gw: the daemon's status as JSON.
status_json() { $TB exec "$1" "$TUNNELD" status --socket "$WORK/$1.sock" --json 2>/dev/null; }

# wait_subflows HOST N TIMEOUT_S: until HOST's connection has N established subflows.
wait_subflows() {
  local host=$1 want=$2 t=$3 got=0
  for _ in $(seq $((t * 10))); do
    got=$(status_json "$host" | jq -r '.sessions[0].connection.subflows // 0' 2>/dev/null || echo 0)
    [[ $got -ge $want ]] && return 0
    sleep 0.1
  done
  echo "# $host: $got established subflows after ${t}s, wanted $want"
  return 1
}

install_routing() {
  $TB exec cpe "$ROOT/scripts/ha-routing.sh" cpe install --tun ha0 --lan-if lan0 >/dev/null &&
    $TB exec gw "$ROOT/scripts/ha-routing.sh" gw install --tun ha0 --wan-if inet0 \
      --cpe-prefix 198.18.10.0/24 --cpe-prefix fd00:10::/64 >/dev/null
}

# probe FROM TO_HOST TO_ADDR COUNT SIZE RATE [PORT]: runs udp-probe across;
# prints the receiver's JSON.
probe() {
  local from=$1 to=$2 addr=$3 count=$4 size=$5 rate=$6 port=${7:-9000}
  local bind="0.0.0.0:$port"
  [[ $addr == *:* ]] && { bind="[::]:$port"; addr="[$addr]"; }
  $TB exec "$to" "$UDP_PROBE" recv --bind "$bind" --count "$count" --idle-timeout 3000 --max-time 60000 \
    >"$WORK/recv.json" 2>"$WORK/recv.err" &
  local rp=$!
  for _ in $(seq 50); do grep -q ready "$WORK/recv.json" 2>/dev/null && break; sleep 0.05; done
  $TB exec "$from" "$UDP_PROBE" send --to "$addr:$port" --count "$count" --size "$size" --rate "$rate" \
    >"$WORK/send.json" 2>&1
  wait "$rp"
  tail -n 1 "$WORK/recv.json"
}
jnum() { jq -r "$1" <<<"$2"; }
