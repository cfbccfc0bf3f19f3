#!/usr/bin/env bash
# Checks the running kernel for what tunneld and its tests need, by trying each
# feature (kernel config files are often absent). Prints one line per feature
# and exits 1 when something the product needs is missing; test-only gaps are
# reported but do not fail. Needs root for the namespace probes.
set -uo pipefail
missing=0
say() { printf '  %-34s %s\n' "$1" "$2"; }
need() { if eval "$2" >/dev/null 2>&1; then say "$1" ok; else say "$1" "MISSING ($3)"; missing=1; fi; }
want() { if eval "$2" >/dev/null 2>&1; then say "$1" ok; else say "$1" "missing, tests only ($3)"; fi; }
mptcp_sock() { python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close()'; }
mptcp6_sock() { python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 262).close()'; }
ns=kcheck$$
nft_bridge() {
  ip netns exec $ns nft -f - <<'NFT'
table bridge t {
  chain c {
    type filter hook forward priority 0;
    numgen random mod 1000 < 1 drop
  }
}
NFT
}
probe_ns() { ip netns add $ns && trap 'ip netns del $ns 2>/dev/null' EXIT; }

echo "kernel $(uname -r)"
echo "product:"
need "MPTCP sockets (CONFIG_MPTCP)" mptcp_sock "CONFIG_MPTCP=y and sysctl net.mptcp.enabled=1"
need "MPTCP over IPv6 (CONFIG_MPTCP_IPV6)" mptcp6_sock "CONFIG_MPTCP_IPV6=y"
need "net.mptcp.enabled = 1" '[ "$(sysctl -n net.mptcp.enabled)" = 1 ]' "sysctl -w net.mptcp.enabled=1"
need "mptcp_pm generic netlink" 'ip mptcp limits show' "CONFIG_MPTCP; iproute2 with 'ip mptcp'"
need "TUN (/dev/net/tun, CONFIG_TUN)" '[ -c /dev/net/tun ]' "modprobe tun"
need "nftables (CONFIG_NF_TABLES)" 'nft list tables' "CONFIG_NF_TABLES, package nftables"
echo "tests and netns-testbed:"
if probe_ns; then
  want "network namespaces (CONFIG_NET_NS)" true ""
  want "veth (CONFIG_VETH)" "ip -n $ns link add v0 type veth peer name v1" "CONFIG_VETH"
  want "bridge (CONFIG_BRIDGE)" "ip -n $ns link add b0 type bridge" "CONFIG_BRIDGE"
  want "tbf qdisc (CONFIG_NET_SCH_TBF)" "ip -n $ns link set v0 up && tc -n $ns qdisc add dev v0 root tbf rate 1mbit burst 4k latency 50ms" "CONFIG_NET_SCH_TBF"
  want "htb qdisc and u32 filter (CONFIG_NET_SCH_HTB, CONFIG_NET_CLS_U32; shaping)" \
    "tc -n $ns qdisc replace dev v0 root handle 1: htb && tc -n $ns filter add dev v0 parent 1: prio 1 protocol ip u32 match ip dst 192.0.2.1/32 flowid 1:2" \
    "CONFIG_NET_SCH_HTB, CONFIG_NET_CLS_U32"
  want "nft bridge + numgen" nft_bridge "CONFIG_NF_TABLES_BRIDGE, CONFIG_NFT_NUMGEN"
  want "net.mptcp.blackhole_timeout" "ip netns exec $ns sysctl -w net.mptcp.blackhole_timeout=0" "kernel 6.12+; optional"
else
  say "network namespaces (CONFIG_NET_NS)" "missing or not root: namespace tests will skip"
fi
if ((missing)); then echo "result: the kernel lacks what tunneld needs (see MISSING)"; exit 1; fi
echo "result: ok"
