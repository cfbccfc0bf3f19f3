#!/usr/bin/env bash
# Which in-kernel path-manager endpoints give a dual-stack MPTCP connection a
# subflow in the other address family (docs/operations.md, "Both families").
#
# Two namespaces, client and server, joined by two veth pairs: a v4 link with
# only IPv4 addresses and a v6 link with only IPv6 addresses. Both ends use
# AF_INET6 MPTCP sockets with IPV6_V6ONLY=0 (IPv4 as v4-mapped), the server
# listens on [::]. Each case sets the endpoints, opens one connection, and
# counts the established TCP subflows on the client after at most 3 s.
#
# Usage: dualstack_mptcp.sh [-v]   (-v prints each case's subflows)
# Prints TAP; exits 77 when not root or the kernel has no MPTCP.
set -uo pipefail

VERBOSE=0
[[ ${1:-} == -v ]] && VERBOSE=1
skip_all() { echo "1..0 # SKIP $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip_all "needs root (network namespaces)"
PY=/usr/bin/python3
[[ -x $PY ]] || skip_all "needs $PY"

C="tunneld-paths-$$-c"
S="tunneld-paths-$$-s"
WORK=$(mktemp -d /tmp/tunneld-paths.XXXXXX)
SRV_PID=""
cleanup() {
  [[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null
  ip netns del "$C" 2>/dev/null
  ip netns del "$S" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$C" 2>/dev/null || skip_all "cannot create network namespaces"
ip netns add "$S"
ip netns exec "$C" sysctl -qw net.mptcp.enabled=1 2>/dev/null || skip_all "kernel has no MPTCP"
for ns in "$C" "$S"; do
  ip netns exec "$ns" sysctl -qw net.mptcp.blackhole_timeout=0 2>/dev/null
  ip -n "$ns" link set lo up
done
ip link add c4 netns "$C" type veth peer name s4 netns "$S"
ip link add c6 netns "$C" type veth peer name s6 netns "$S"
ip -n "$C" addr add 10.0.1.2/24 dev c4
ip -n "$S" addr add 10.0.1.1/24 dev s4
ip -n "$C" addr add fd00:2::2/64 dev c6 nodad
ip -n "$S" addr add fd00:2::1/64 dev s6 nodad
for l in c4 c6; do ip -n "$C" link set "$l" up; done
for l in s4 s6; do ip -n "$S" link set "$l" up; done

# Server: accepts connections and drains them until the peer closes; keeps
# listening (joins arrive on the listener).
cat >"$WORK/server.py" <<'PY'
import socket, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 262)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 7000)); s.listen(8)
def drain(c):
    while c.recv(65536): pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
# Client: family and destination from argv; holds the connection open for
# the caller to inspect, until stdin closes.
cat >"$WORK/client.py" <<'PY'
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM, 262)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.settimeout(3)
s.connect((sys.argv[2], 7000))
s.sendall(b"x" * 1000)
print("connected", flush=True)
sys.stdin.read()
s.close()
PY
ip netns exec "$S" "$PY" "$WORK/server.py" &
SRV_PID=$!
for _ in $(seq 30); do
  ip netns exec "$S" ss -Hltn 'sport = :7000' | grep -q . && break
  sleep 0.1
done

N=0 FAILED=0
# run_case NAME WANT SOCKFAMILY DEST "CLIENT ENDPOINTS" "SERVER ENDPOINTS" [AFTER WANT_AFTER]
# Endpoints: "ADDR dev IF FLAGS..." separated by ";", or empty. AFTER is
# "ip mptcp ..." arguments run in the client namespace once WANT subflows are
# up; WANT_AFTER is the subflow count expected within 1 s of it.
count_flows() {
  flows=$(ip netns exec "$C" ss -Htn state established 'dport = :7000' | awk '{print $3 "->" $4}')
  got=$(grep -c . <<<"$flows")
}
add_endpoints() {  # add_endpoints NS "EP; EP"
  local ep
  IFS=';' read -ra eps <<<"$2"
  for ep in "${eps[@]}"; do [[ -n ${ep// } ]] && ip -n "$1" mptcp endpoint add $ep; done
}
run_case() {
  local name=$1 want=$2 fam=$3 dest=$4 cep=$5 sep=$6 after=${7:-} want_after=${8:-}
  for ns in "$C" "$S"; do
    ip -n "$ns" mptcp endpoint flush
    ip -n "$ns" mptcp limits set subflows 4 add_addr_accepted 4
  done
  add_endpoints "$C" "$cep"
  add_endpoints "$S" "$sep"
  local got=0 flows=""
  coproc CLIENT { ip netns exec "$C" "$PY" "$WORK/client.py" "$fam" "$dest" 2>&1; }
  local first=""
  read -r -t 5 first <&"${CLIENT[0]}"
  if [[ $first == connected ]]; then
    for _ in $(seq 30); do  # at most 3 s
      count_flows
      ((got >= want)) && break
      sleep 0.1
    done
    sleep 0.5  # a later, unexpected subflow would show here
    count_flows
  fi
  N=$((N + 1))
  if [[ $got -eq $want ]]; then
    echo "ok $N - $name: $got subflow(s)"
  else
    FAILED=$((FAILED + 1))
    echo "not ok $N - $name: $got subflow(s), expected $want${first:+ ($first)}"
  fi
  if ((VERBOSE)); then
    sed 's/^/#   /' <<<"$flows"
    ip -n "$C" mptcp endpoint show | sed 's/^/#   client endpoint: /'
  fi
  if [[ -n $after && $first == connected ]]; then
    local after_ok=1
    ip -n "$C" mptcp $after || after_ok=0
    for _ in $(seq 10); do  # at most 1 s
      count_flows
      ((got == want_after)) && break
      sleep 0.1
    done
    N=$((N + 1))
    if ((after_ok)) && [[ $got -eq $want_after ]]; then
      echo "ok $N - $name, then 'ip mptcp $after': $got subflow(s)"
    else
      FAILED=$((FAILED + 1))
      echo "not ok $N - $name, then 'ip mptcp $after': $got subflow(s), expected $want_after"
    fi
    if ((VERBOSE)); then
      sed 's/^/#   /' <<<"$flows"
      ip -n "$C" mptcp endpoint show | sed 's/^/#   client endpoint: /'
    fi
  fi
  exec {CLIENT[1]}>&-
  wait "$CLIENT_PID" 2>/dev/null
  for _ in $(seq 20); do  # the connection is gone before the next case
    ip netns exec "$C" ss -Htn 'dport = :7000' | grep -q ESTAB || break
    sleep 0.1
  done
}

# IPv4 first, IPv6 path: initial subflow to the v4-mapped server address.
run_case "v4 initial, client v6 'subflow', server announces nothing" 1 6 ::ffff:10.0.1.1 \
  "fd00:2::2 dev c6 subflow" ""
run_case "v4 initial, client v6 'subflow', server v6 'signal'" 2 6 ::ffff:10.0.1.1 \
  "fd00:2::2 dev c6 subflow" "fd00:2::1 dev s6 signal" "endpoint flush" 1
run_case "v4 initial, client v6 'subflow fullmesh', server v6 'signal'" 2 6 ::ffff:10.0.1.1 \
  "fd00:2::2 dev c6 subflow fullmesh" "fd00:2::1 dev s6 signal" "endpoint flush" 1
# The kernel records the subflow's source as an 'implicit' endpoint; adding
# a real endpoint for that address replaces it (no EEXIST).
run_case "v4 initial, no client endpoint, server v6 'signal'" 2 6 ::ffff:10.0.1.1 \
  "" "fd00:2::1 dev s6 signal" "endpoint add fd00:2::2 dev c6 subflow" 2
run_case "AF_INET client socket, client v6 'subflow', server v6 'signal'" 1 4 10.0.1.1 \
  "fd00:2::2 dev c6 subflow" "fd00:2::1 dev s6 signal"
# IPv6 first, IPv4 path.
run_case "v6 initial, client v4 'subflow', server announces nothing" 1 6 fd00:2::1 \
  "10.0.1.2 dev c4 subflow" ""
run_case "v6 initial, client v4 'subflow', server v4 'signal'" 2 6 fd00:2::1 \
  "10.0.1.2 dev c4 subflow" "10.0.1.1 dev s4 signal"
run_case "v6 initial, client v4 'subflow fullmesh', server v4 'signal'" 2 6 fd00:2::1 \
  "10.0.1.2 dev c4 subflow fullmesh" "10.0.1.1 dev s4 signal"

# Both paths as endpoints, the server announcing both of its addresses: the
# announcement of the address already in use adds nothing.
run_case "v4 initial, client v4+v6 'subflow', server v4+v6 'signal'" 2 6 ::ffff:10.0.1.1 \
  "10.0.1.2 dev c4 subflow; fd00:2::2 dev c6 subflow" "10.0.1.1 dev s4 signal; fd00:2::1 dev s6 signal"
run_case "v6 initial, client v4+v6 'subflow fullmesh', server v4+v6 'signal'" 2 6 fd00:2::1 \
  "10.0.1.2 dev c4 subflow fullmesh; fd00:2::2 dev c6 subflow fullmesh" \
  "10.0.1.1 dev s4 signal; fd00:2::1 dev s6 signal"

echo "1..$N"
((FAILED == 0))
