# Shared by demo.sh, bench.sh and aggregation.sh: both tunneld ends in a
# testbed, the UDP policy routing, and the receive-buffer limit. Source it
# after setting ROOT, TB (testbed command with --prefix), WORK and TUNNELD.

# tunnel_up WHO [extra flags for both ends...]: a fresh key, bound at the
# gateway to the CPE's id and prefixes; the gateway in gw and the CPE in cpe
# (IPv4 and IPv6), then waits up to 10 s for two subflows; on failure prints
# both logs and exits 1. The CPE's path flags are CPE_PATHS (default
# "--path dsl --path lte"); GW_FLAGS are extra flags for the gateway only.
tunnel_up() {
  local who=$1 n=0; shift
  # The CPE's key (64 hex digits) and the gateway's line binding its id to its prefixes.
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/psk"; echo >>"$WORK/psk"
   printf '%s %s %s\n' "$who-cpe" "$(tr -d '\n' <"$WORK/psk")" 198.18.10.0/24,fd00:10::/64 >"$WORK/gw.keys")
  $TB exec gw "$TUNNELD" server --listen 198.18.0.1:7000 --tun ha0 --psk-file "$WORK/gw.keys" \
    --tun-address 198.18.100.2/30 --tun-address fd00:100::2/64 --status-socket "$WORK/gw.sock" ${GW_FLAGS:-} "$@" \
    >"$WORK/gw.log" 2>&1 &
  # shellcheck disable=SC2086
  $TB exec cpe "$TUNNELD" client --server 198.18.0.1:7000 --tun ha0 ${CPE_PATHS:---path dsl --path lte} --psk-file "$WORK/psk" \
    --id "$who-cpe" --prefix 198.18.10.0/24 --prefix fd00:10::/64 \
    --tun-address 198.18.100.1/30 --tun-address fd00:100::1/64 --status-socket "$WORK/cpe.sock" "$@" \
    >"$WORK/cpe.log" 2>&1 &
  for _ in $(seq 100); do
    n=$($TB exec cpe "$TUNNELD" status --socket "$WORK/cpe.sock" --json 2>/dev/null |
      jq -r '.sessions[0].connection.subflows // 0' || echo 0)
    [[ $n -ge 2 ]] && return 0
    sleep 0.1
  done
  echo "$who: tunnel did not come up with 2 subflows" >&2
  cat "$WORK"/*.log >&2
  exit 1
}

# routing on|off: the UDP policy routing into the TUN on both ends.
routing() {
  if [[ $1 == on ]]; then
    $TB exec cpe "$ROOT/scripts/ha-routing.sh" cpe install --tun ha0 --lan-if lan0 >/dev/null
    $TB exec gw "$ROOT/scripts/ha-routing.sh" gw install --tun ha0 --wan-if inet0 \
      --cpe-prefix 198.18.10.0/24 --cpe-prefix fd00:10::/64 >/dev/null
  else
    $TB exec cpe "$ROOT/scripts/ha-routing.sh" cpe remove
    $TB exec gw "$ROOT/scripts/ha-routing.sh" gw remove
  fi
}

# iperf3 receivers ask for a 2 MiB socket buffer (-w): behind a multipath
# tunnel data arrives in bursts. The kernel caps it at net.core.rmem_max,
# which is global: rmem_raise lifts it to 4 MiB if lower, rmem_restore (call
# it from the EXIT trap) puts it back.
RMEM_OLD=$(sysctl -n net.core.rmem_max)
rmem_raise() { ((RMEM_OLD >= 4 << 20)) || sysctl -qw net.core.rmem_max=$((4 << 20)); }
rmem_restore() { sysctl -qw net.core.rmem_max="$RMEM_OLD"; }
