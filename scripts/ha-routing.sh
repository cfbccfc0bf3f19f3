#!/usr/bin/env bash
# Policy routing that steers UDP into the tunnel, for a CPE or a gateway.
#
#   ha-routing.sh cpe install --tun ha0 --lan-if lan0
#       UDP arriving from the LAN interface is marked and routed into the TUN.
#   ha-routing.sh gw install --tun ha0 --wan-if inet0 --cpe-prefix 198.18.10.0/24 [--cpe-prefix ...]
#       UDP from the Internet side toward a CPE's inner prefix is routed into the TUN.
#   ha-routing.sh (cpe|gw) remove
#   ha-routing.sh path up --dev IF --table N --addr ADDR [--via GW] [--pref P]
#       A WAN path's source routing, for a PPP ip-up hook or a hotplug script on
#       each (re)dial: replaces the path's old "from ADDR" rule (pref P) and
#       table N's default route of ADDR's family; no --via: a device route (PPP).
#   ha-routing.sh path down --dev IF --table N [--family 4|6] [--pref P]
#       Removes them (both families unless --family).
#
# Other traffic is untouched. Runs in the current network namespace; uses
# nftables (table inet tunneld_ha), fwmark 0x7a and routing table 7a (122).
set -euo pipefail

# path up|down: per-path source routing; pref defaults to 1100 + table.
path_routing() {
  local action=$1; shift
  local dev="" table="" addr="" via="" pref="" fams=""
  while (($#)); do
    case $1 in
      --dev) dev=$2; shift 2 ;;
      --table) table=$2; shift 2 ;;
      --addr) addr=${2%%/*}; shift 2 ;;
      --via) via=$2; shift 2 ;;
      --pref) pref=$2; shift 2 ;;
      --family) fams=$2; shift 2 ;;
      *) echo "ha-routing: unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
  [[ -n $dev && $table =~ ^[0-9]+$ ]] || { echo "ha-routing: path needs --dev and a numeric --table" >&2; exit 2; }
  pref=${pref:-$((1100 + table))}
  if [[ $action == up ]]; then
    [[ -n $addr ]] || { echo "ha-routing: path up needs --addr" >&2; exit 2; }
    fams=4; [[ $addr == *:* ]] && fams=6
  fi
  for f in ${fams:-4 6}; do
    # The old address's rule and routes go first: a redial may bring any address.
    while ip -"$f" rule del pref "$pref" 2>/dev/null; do :; done
    ip -"$f" route flush table "$table" 2>/dev/null || true
  done
  [[ $action == down ]] && { echo "ha-routing: path $dev (table $table) routing removed"; return 0; }
  ip link show dev "$dev" >/dev/null 2>&1 || { echo "ha-routing: no interface $dev" >&2; exit 1; }
  local f=$fams
  if [[ -n $via ]]; then
    ip -"$f" route replace default via "$via" dev "$dev" table "$table"
  else
    ip -"$f" route replace default dev "$dev" table "$table"
  fi
  ip -"$f" rule add from "$addr" table "$table" pref "$pref"
  echo "ha-routing: path $dev: from $addr via table $table${via:+ (via $via)}"
}

if [[ ${1:-} == path ]]; then
  [[ ${2:-} == up || ${2:-} == down ]] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
  path_routing "${@:2}"
  exit 0
fi

MARK=0x7a
TABLE=122
PREF=1220

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

role=${1:-}; action=${2:-}
[[ $role == cpe || $role == gw ]] || usage
[[ $action == install || $action == remove ]] || usage
shift 2
tun="" lanif="" wanif=""
prefixes=()
while (($#)); do
  case $1 in
    --tun) tun=$2; shift 2 ;;
    --lan-if) lanif=$2; shift 2 ;;
    --wan-if) wanif=$2; shift 2 ;;
    --cpe-prefix) prefixes+=("$2"); shift 2 ;;
    *) echo "ha-routing: unknown argument '$1'" >&2; usage ;;
  esac
done

remove() {
  nft delete table inet tunneld_ha 2>/dev/null || true
  while ip rule del pref "$PREF" 2>/dev/null; do :; done
  while ip -6 rule del pref "$PREF" 2>/dev/null; do :; done
  ip route flush table "$TABLE" 2>/dev/null || true
  ip -6 route flush table "$TABLE" 2>/dev/null || true
}

if [[ $action == remove ]]; then remove; exit 0; fi
[[ -n $tun ]] || { echo "ha-routing: --tun is required" >&2; exit 2; }
ip link show dev "$tun" >/dev/null 2>&1 || { echo "ha-routing: no interface $tun (start tunneld first)" >&2; exit 1; }
remove

if [[ $role == cpe ]]; then
  [[ -n $lanif ]] || { echo "ha-routing: --lan-if is required for cpe" >&2; exit 2; }
  nft -f - <<NFT
table inet tunneld_ha {
  chain pre { type filter hook prerouting priority mangle; policy accept;
    iifname "$lanif" meta l4proto udp meta mark set $MARK
  }
}
NFT
  ip route add default dev "$tun" table "$TABLE"
  ip -6 route add default dev "$tun" table "$TABLE"
else
  [[ -n $wanif && ${#prefixes[@]} -gt 0 ]] || { echo "ha-routing: gw needs --wan-if and --cpe-prefix" >&2; exit 2; }
  v4=() v6=()
  for p in "${prefixes[@]}"; do
    if [[ $p == *:* ]]; then v6+=("$p"); else v4+=("$p"); fi
  done
  rules=""
  ((${#v4[@]})) && rules+="    iifname \"$wanif\" meta l4proto udp ip daddr { $(IFS=,; echo "${v4[*]}") } meta mark set $MARK"$'\n'
  ((${#v6[@]})) && rules+="    iifname \"$wanif\" meta l4proto udp ip6 daddr { $(IFS=,; echo "${v6[*]}") } meta mark set $MARK"$'\n'
  nft -f - <<NFT
table inet tunneld_ha {
  chain pre { type filter hook prerouting priority mangle; policy accept;
$rules  }
}
NFT
  for p in "${v4[@]}"; do ip route add "$p" dev "$tun" table "$TABLE"; done
  for p in "${v6[@]}"; do ip -6 route add "$p" dev "$tun" table "$TABLE"; done
fi
ip rule add fwmark "$MARK" table "$TABLE" pref "$PREF"
ip -6 rule add fwmark "$MARK" table "$TABLE" pref "$PREF"
echo "ha-routing: $role UDP policy routing via $tun installed"
