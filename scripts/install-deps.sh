#!/usr/bin/env bash
# Installs every Debian package tunneld needs to build, test and run its
# namespace testbed. Idempotent: packages already present are skipped, and
# apt-get is only run when something is missing.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config
  libmnl-dev libnl-3-dev libnl-route-3-dev
  libboost-dev libboost-program-options-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev
  libssl-dev libsystemd-dev
)
TEST_PKGS=(
  iproute2 iputils-ping nftables iperf3 socat procps kmod
  clang libclang-rt-14-dev
  dnsmasq-base bind9-dnsutils sip-tester jq python3
  irtt gnuplot-nox tcpdump
)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $EUID -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
