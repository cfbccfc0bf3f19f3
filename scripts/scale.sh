#!/usr/bin/env bash
# Scale benchmark (not a test): how much of the gateway's user memory an idle
# CPE session costs, and how fast sessions are admitted. For each count (1,000
# then 10,000 by default) it starts a fresh gateway (normal build) in a
# private network namespace this script creates (the gateway needs a TUN),
# opens that many authenticated, heartbeating, idle sessions over loopback
# inside it with tunnel-loadgen (one any-id key, --allow-unbound-prefixes),
# and prints sessions established, handshakes per second and the gateway's
# VmRSS per session (after minus before, over the count), plus the kernel's
# socket memory of one idle gateway-side connection (ss -tm skmem).
# Target: an idle session <= 64 KiB of user memory. Needs root and a build.
#
#   sudo ./scripts/scale.sh [--counts "1000 10000"] [--hold S] [--build DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
COUNTS="1000 10000"
HOLD=5
BUILD="$ROOT/build"
while (($#)); do
  case $1 in
    --counts) COUNTS=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
TUNNELD="$BUILD/tunneld/tunneld"
LOADGEN="$BUILD/tests/tunnel-loadgen"
[[ -x $TUNNELD && -x $LOADGEN ]] || { echo "build tunneld and tunnel-loadgen first" >&2; exit 1; }

NS="tscale$$"
WORK="$(mktemp -d)"
GW=""
cleanup() {
  [[ -n $GW ]] && kill "$GW" 2>/dev/null && wait "$GW" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up
umask 077
KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
echo "$KEY" >"$WORK/cpe.key"
echo "$KEY" >"$WORK/gw.keys"   # the any-id key line

# Descriptors: the gateway reserves three a session (tunneld's RLIMIT_NOFILE
# check: a bulk link and a realtime link per path of a two-path CPE) plus the
# pending handshakes; a loader
# uses two a session (its socket and its TUN duplicate). The hard limit is
# raised to what the largest count needs (root with CAP_SYS_RESOURCE, up to
# fs.nr_open); where it cannot be, it caps both: loaders are split into
# several processes, and the count is capped (and says so) when the gateway
# cannot have enough.
PENDING=256
MAX_COUNT=$(tr ' ' '\n' <<<"$COUNTS" | sort -n | tail -1)
NEED=$((MAX_COUNT * 3 + PENDING + 4096))
NR_OPEN=$(cat /proc/sys/fs/nr_open)
((NEED <= NR_OPEN)) || NEED=$NR_OPEN
if (($(ulimit -Hn) < NEED)) && ! ulimit -Hn "$NEED" 2>/dev/null; then
  echo "hard RLIMIT_NOFILE stays $(ulimit -Hn): cannot raise it to $NEED (no CAP_SYS_RESOURCE)"
fi
HARD=$(ulimit -Hn)
ulimit -Sn "$HARD"
PER_LOADER=$(( (HARD - 512) / 2 ))
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

for N in $COUNTS; do
  MAXN=$(( (HARD - PENDING - 128) / 3 ))
  if ((N > MAXN)); then
    echo "sessions $N: capped to $MAXN (hard RLIMIT_NOFILE $HARD; tunneld reserves 3 a session)"
    N=$MAXN
  fi
  # tunneld raises its soft limit to what --max-cpes and --max-pending need.
  ip netns exec "$NS" "$TUNNELD" server --listen 127.0.0.1:7000 --tun sc0 --psk-file "$WORK/gw.keys" \
    --allow-unbound-prefixes --max-cpes "$N" --max-pending $PENDING --max-pending-per-source $PENDING \
    --log-level error >"$WORK/gw.log" 2>&1 &
  GW=$!
  for _ in $(seq 50); do ip netns exec "$NS" ss -ltn | grep -q ':7000 ' && break; sleep 0.1; done
  sleep 0.5
  before=$(rss_kib "$GW")
  set +e
  out="$(lgs=()
    for ((first = 0; first < N; first += PER_LOADER)); do
      n=$(( N - first < PER_LOADER ? N - first : PER_LOADER ))
      ip netns exec "$NS" "$LOADGEN" --server 127.0.0.1:7000 --key-file "$WORK/cpe.key" --count "$n" \
        --first "$first" --concurrency $((PENDING / 2)) --hold 600 --timeout 600 >"$WORK/lg.$first" 2>&1 &
      lgs+=($!)
    done
    # Sample the gateway while the sessions are idle and held (the loaders hold them HOLD s).
    sleep 1
    alive() { for p in "${lgs[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
    while alive; do
      c=$(ip netns exec "$NS" ss -tn state established '( sport = :7000 )' | tail -n +2 | wc -l)
      if ((c >= N)); then
        sleep "$HOLD"   # idle: heartbeats only, buffers trimmed
        rss_kib "$GW" >"$WORK/after"
        ip netns exec "$NS" ss -tmn state established '( sport = :7000 )' | sed -n '2,3p' >"$WORK/skmem"
        top -b -n1 | sed -n '8,11p' >&2
        break
      fi
      sleep 0.5
    done
    kill -TERM "${lgs[@]}" 2>/dev/null
    rc=0
    for p in "${lgs[@]}"; do wait "$p" || rc=1; done
    # Sum the loaders: sessions established, and handshakes per second over the slowest.
    cat "$WORK"/lg.* | awk '/^established/ {e += $2} /^seconds/ {if ($2 > s) s = $2} /^still_connected/ {c += $2}
      END {printf "established %d\nhandshakes_per_s %.0f\nstill_connected %d\n", e, s ? e / s : 0, c}'
    rm -f "$WORK"/lg.*
    exit $rc)"
  rc=$?
  set -e
  after=$(cat "$WORK/after" 2>/dev/null || echo 0)
  est=$(awk '/^established/ {print $2}' <<<"$out")
  hps=$(awk '/^handshakes_per_s/ {print $2}' <<<"$out")
  still=$(awk '/^still_connected/ {print $2}' <<<"$out")
  per=$(( after > before && N > 0 ? (after - before) * 1024 / N : 0 ))
  echo "sessions $N: established $est (still connected after ${HOLD}s: $still), handshakes/s $hps"
  echo "  gateway VmRSS ${before} KiB before, ${after} KiB after: $((per / 1024)) KiB ($per bytes) per idle session" \
       "(target 65536 bytes: $([[ $per -le 65536 ]] && echo met || echo "missed by $((per - 65536)) bytes"))"
  echo "  one idle gateway connection (ss -tm): $(tr -s ' \n' ' ' <"$WORK/skmem" 2>/dev/null | grep -o 'skmem:([^)]*)' | head -1)"
  ((rc == 0)) || echo "  loadgen exit $rc: $(tr '\n' ' ' <<<"$out")"
  kill "$GW" 2>/dev/null; wait "$GW" 2>/dev/null || true
  GW=""
  rm -f "$WORK/after" "$WORK/skmem"
  sleep 1
done
