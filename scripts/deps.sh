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
  emscripten dpkg-dev
  chromium
)

# make web fetches the Signal library's and mbedtls's sources with `apt-get source`, which
# needs a deb-src entry; mirror the machine's own Debian entry (idempotent).
SRC_LIST=/etc/apt/sources.list.d/debian-src.sources
need_src=0
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  need_src=1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js runs the interop oracles; Debian's nodejs+npm are used only when no node is present.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ] && [ $need_src -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  [ $need_src -eq 1 ] && echo "deps.sh: missing: a deb-src entry ($SRC_LIST)" >&2
  [ ${#missing[@]} -gt 0 ] && echo "deps.sh: missing: ${missing[*]}" >&2
  exit 1
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: run as root: apt-get update && $cmd (and add a deb-src entry)" >&2
  exit 1
fi
if [ $need_src -eq 1 ]; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$SRC_LIST"
  else
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$SRC_LIST"
  fi
  echo "deps.sh: added $SRC_LIST" >&2
fi
if [ ${#missing[@]} -eq 0 ]; then
  apt-get update -q >/dev/null
  exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
$cmd >/dev/null
