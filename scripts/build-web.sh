#!/usr/bin/env bash
# Builds the browser guest app into build/web (issue #6): libkeywave + the Signal library +
# jansson + the mbedtls modules lib/crypto_mbedtls.c needs, compiled with emscripten into
# keywave.mjs + keywave.wasm, and the page (web/) bundled with esbuild.
# Sources come from Debian with `apt-get source` into build/web-src (never committed; a
# deb-src entry is needed: scripts/deps.sh adds one). Also builds build/web-test/, the same
# core for Node with the crypto known-answer door (tests/web/wasm_kat.test.mjs).
# Usage: scripts/build-web.sh   (from the repository root; `make web` runs it)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SRC=build/web-src
OBJ=build/web-obj
OUT=build/web
TEST_OUT=build/web-test
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs} # emscripten 3.1.6 needs it (NOTES.md)
JOBS=$(nproc 2>/dev/null || echo 2)

for tool in emcc emcmake emmake apt-get dpkg-source npm; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build-web: $tool not found; run scripts/deps.sh as root" >&2
    exit 1
  }
done

mkdir -p "$SRC" "$OBJ" "$OUT" "$TEST_OUT"

# ---- sources (Debian's, patched as Debian ships them) --------------------------------
fetch() { # $1 = source package, $2 = directory glob it unpacks to
  if ! compgen -G "$SRC/$2" >/dev/null; then
    (cd "$SRC" && apt-get source -q "$1" >/dev/null 2>&1) || {
      echo "build-web: apt-get source $1 failed (is there a deb-src entry? scripts/deps.sh)" >&2
      exit 1
    }
  fi
  compgen -G "$SRC/$2" | head -n 1
}
SIGNAL_DIR=$(fetch libsignal-protocol-c 'libsignal-protocol-c-2.*')
MBED_DIR=$(fetch mbedtls 'mbedtls-2.*')
JANSSON_DIR=$(fetch jansson 'jansson-2.*')

# ---- libsignal-protocol-c and jansson with emcmake -----------------------------------
if [ ! -f "$SIGNAL_DIR/build-wasm/src/libsignal-protocol-c.a" ]; then
  mkdir -p "$SIGNAL_DIR/build-wasm"
  (cd "$SIGNAL_DIR/build-wasm" &&
    emcmake cmake .. -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >cmake.log 2>&1 &&
    emmake make -j"$JOBS" >make.log 2>&1) || {
    echo "build-web: libsignal-protocol-c failed; see $SIGNAL_DIR/build-wasm/*.log" >&2
    exit 1
  }
fi
if [ ! -f "$JANSSON_DIR/build-wasm/lib/libjansson.a" ]; then
  mkdir -p "$JANSSON_DIR/build-wasm"
  (cd "$JANSSON_DIR/build-wasm" &&
    emcmake cmake .. -DCMAKE_BUILD_TYPE=Release -DJANSSON_BUILD_DOCS=OFF \
      -DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON >cmake.log 2>&1 &&
    emmake make -j"$JOBS" >make.log 2>&1) || {
    echo "build-web: jansson failed; see $JANSSON_DIR/build-wasm/*.log" >&2
    exit 1
  }
fi

# ---- objects: one rule, rebuilt when the source or a header of ours is newer ----------
CFLAGS=(-O3 -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DKW_CRYPTO_MBEDTLS
  "-DMBEDTLS_CONFIG_FILE=\"mbedtls_config.h\""
  -Iinclude -Ilib -Iweb/wasm -I"$MBED_DIR/include" -I"$SIGNAL_DIR/src"
  -I"$JANSSON_DIR/build-wasm/include")
HEADERS=$(ls -t include/keywave/*.h lib/*.h web/wasm/*.h | head -n 1)
compile() { # $1 = source, $2 = object, rest = extra flags
  local src=$1 obj=$2
  shift 2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$HEADERS" -nt "$obj" ]; then
    emcc "${CFLAGS[@]}" "$@" -c "$src" -o "$obj"
  fi
}
OBJS=()
for m in aes sha256 sha512 md md_wrap cipher cipher_wrap gcm hkdf platform_util constant_time; do
  [ -f "$MBED_DIR/library/$m.c" ] || continue
  compile "$MBED_DIR/library/$m.c" "$OBJ/mbedtls_$m.o" -w -Wno-error
  OBJS+=("$OBJ/mbedtls_$m.o")
done
for src in lib/*.c; do
  case "$src" in
    lib/crypto_openssl.c | lib/store_file.c) continue ;; # OpenSSL / files: native only
  esac
  o="$OBJ/$(basename "${src%.c}").o"
  compile "$src" "$o"
  OBJS+=("$o")
done
compile web/wasm/keywave_web.c "$OBJ/keywave_web.o"
compile web/wasm/keywave_web.c "$OBJ/keywave_web_test.o" -DKW_WEB_TEST
compile web/wasm/web_test_crypto.c "$OBJ/web_test_crypto.o"

LIBS=("$SIGNAL_DIR/build-wasm/src/libsignal-protocol-c.a" "$JANSSON_DIR/build-wasm/lib/libjansson.a")
LINK=(-O3 -sMODULARIZE=1 -sALLOW_MEMORY_GROWTH=1 -sDYNAMIC_EXECUTION=0
  -sEXPORTED_FUNCTIONS=_kww_call,_kww_free,_malloc,_free
  -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8)

# The page's module: browser only (it runs in a module worker), ES module, async compilation
# on first import.
emcc "${LINK[@]}" -sEXPORT_ES6=1 -sENVIRONMENT=web,worker -sEXPORT_NAME=KeywaveModule \
  "${OBJS[@]}" "$OBJ/keywave_web.o" "${LIBS[@]}" -o "$OUT/keywave.mjs"
# The tests' module: Node, synchronous compilation (NOTES.md), plus the crypto door.
emcc "${LINK[@]}" -sENVIRONMENT=node -sWASM_ASYNC_COMPILATION=0 -sEXPORT_NAME=KeywaveModule \
  "${OBJS[@]}" "$OBJ/keywave_web_test.o" "$OBJ/web_test_crypto.o" "${LIBS[@]}" \
  -o "$TEST_OUT/keywave_test.cjs"

# ---- the page ---------------------------------------------------------------------------
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# app.js and its lazily loaded chunks (livekit-client only when a media server is
# configured), and livekit-client's frame-encryption worker as its own same-origin file.
rm -f "$OUT"/chunk-*.js "$OUT"/chunk-*.js.map
web/node_modules/.bin/esbuild app=web/src/app.js core-worker=web/src/core-worker.js \
  livekit-e2ee-worker=web/src/livekit-worker.js \
  --bundle --format=esm --splitting --target=es2020 --minify --sourcemap --log-level=warning \
  --chunk-names='chunk-[hash]' --outdir="$OUT"
cp web/index.html web/style.css "$OUT/"
ls -l "$OUT" | awk 'NR>1 {printf "build-web: %-16s %8d bytes\n", $9, $5}'
