#!/usr/bin/env bash
# Guest-join benchmark (issue 5 point 3, issue 6 point 4): bench/join.mjs (CLI guests) and
# bench/join_browser.mjs (the browser page). Builds nothing; needs
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
KW_TOOLS="$build/tests/interop" node "$here/join.mjs"
# The browser figure (issue 6): the page of build/web in headless Chromium.
if [ -f "$root/build/web/index.html" ] && [ -x /usr/bin/chromium ] && [ -d "$root/web/node_modules/playwright-core" ]; then
    KW_TOOLS="$build/tests/interop" node "$here/join_browser.mjs"
else
    echo "run-join: browser figure skipped (make web, Debian chromium)" >&2
fi
