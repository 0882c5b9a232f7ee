#!/usr/bin/env bash
# Guest-join benchmark (issue 5 point 3): see bench/join.mjs. Builds nothing; needs
# `make all` (build/keywaved, build/keywave) and tests/interop/node_modules (npm ci there).
# Usage: bench/run-join.sh [BUILD_DIR]; environment as bench/join.mjs says.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
[ -x "$build/keywave" ] && [ -x "$build/keywaved" ] || { echo "run-join: make all first" >&2; exit 1; }
if [ ! -d "$root/tests/interop/node_modules/socket.io-client" ]; then
    (cd "$root/tests/interop" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
KW_TOOLS="$build/tests/interop" exec node "$here/join.mjs"
