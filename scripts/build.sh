#!/usr/bin/env bash
# Installs build dependencies (Debian packages) if missing, then builds into
# build/. The daemon ends up at build/tunneld/tunneld.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/install-deps.sh" "${INSTALL_DEPS_ARGS:-}"
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DTUNNEL_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
echo "build: build/tunneld/tunneld"
