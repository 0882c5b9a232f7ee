#!/usr/bin/env bash
# Installs every Debian package keywave's build and tests need (DESIGN.md section 2).
# As root it installs what is missing; otherwise it prints the exact command.
# Usage: scripts/deps.sh [--check]   (--check: exit 1 if something is missing, install nothing)
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  clang libclang-rt-14-dev
  libssl-dev openssl
  libsignal-protocol-c-dev
  libwebsockets-dev
  libjansson-dev
  libjwt-dev
  libsqlite3-dev sqlite3
  ca-certificates curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js runs the interop oracles; Debian's nodejs+npm are used only when no node is present.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "deps.sh: missing: ${missing[*]}" >&2
  exit 1
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: run as root: apt-get update && $cmd" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
$cmd >/dev/null
