#!/usr/bin/env bash
# Runs every test suite and prints one closing line: `N passed, N failed, N skipped`.
# Each suite (a C test binary or a node interop script) prints `RESULT passed=N failed=M`
# (and optionally skipped=K); a suite that crashes or prints no RESULT counts as failed.
# Env: BUILD (build dir), ONLY_C=1 (skip interop), CI=true (sanitizer pass, no skips).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
passed=0 failed=0 skipped=0

run_suite() { # name, command...
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out" | sed "s|^|[$name] |"
  local line
  line=$(printf '%s\n' "$out" | grep -E '^RESULT passed=[0-9]+ failed=[0-9]+' | tail -n 1)
  if [ -z "$line" ]; then
    echo "[$name] no RESULT line (exit $rc): counted as 1 failure"
    failed=$((failed + 1)); return
  fi
  local p f s
  p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
  s=0; grep -q 'skipped=' <<<"$line" && s=$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "[$name] exited $rc with no failed case: counted as 1 failure"
    failed=$((failed + 1))
  fi
}

run_c_suites() { # build dir
  local dir=$1 t
  for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    KEYWAVED="$dir/keywaved" run_suite "$(basename "$dir")/$(basename "$t")" "$t"
  done
}

run_interop() {
  local dir=tests/interop
  if ! command -v node >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then echo "[interop] node missing"; failed=$((failed + 1));
    else echo "[interop] node missing: skipped"; skipped=$((skipped + 1)); fi
    return
  fi
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || {
      echo "[interop] npm ci failed"; failed=$((failed + 1)); return; }
  fi
  local t
  for t in "$dir"/*.test.mjs; do
    [ -f "$t" ] || continue
    KW_TOOLS="$PWD/$BUILD/tests/interop" run_suite "interop/$(basename "$t" .test.mjs)" node "$t"
  done
}

# The browser guest app's tests (tests/web): the wasm core against OpenSSL and the native
# tools, and the page in headless Chromium against a CLI host. They need `make web`.
run_web() {
  if [ ! -f build/web/index.html ] || ! command -v node >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then echo "[web] build/web or node missing"; failed=$((failed + 1));
    else echo "[web] build/web or node missing: skipped (make web)"; skipped=$((skipped + 1)); fi
    return
  fi
  local t
  for t in tests/web/*.test.mjs; do
    [ -f "$t" ] || continue
    KW_TOOLS="$PWD/$BUILD/tests/interop" run_suite "web/$(basename "$t" .test.mjs)" node "$t"
  done
}

# A short libFuzzer run per target (make fuzz runs longer); a crash fails the suite.
run_fuzz() {
  local f out
  for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    # A fresh corpus directory first (libFuzzer writes only there), then the seeds if any.
    local name corpus seeds=()
    name=$(basename "$f")
    corpus=$(mktemp -d)
    [ -d "tests/fuzz/corpus_${name#fuzz_}" ] && seeds=("tests/fuzz/corpus_${name#fuzz_}")
    if out=$("$f" -max_total_time="${FUZZ_SECONDS:-10}" -max_len=4096 "$corpus" "${seeds[@]}" 2>&1); then
      echo "[fuzz/$(basename "$f")] $(grep -E '^Done [0-9]+ runs' <<<"$out" | tail -n 1)"
      passed=$((passed + 1))
    else
      tail -n 20 <<<"$out" | sed "s|^|[fuzz/$(basename "$f")] |"
      failed=$((failed + 1))
    fi
    rm -rf "$corpus"
  done
}

run_c_suites "$BUILD"
[ "${SANITIZE:-}" = 1 ] || run_fuzz
[ "${ONLY_C:-}" = 1 ] || run_interop
[ "${ONLY_C:-}" = 1 ] || run_web

# CI adds the ASan + UBSan pass so that .ci/run stays the README's one test command.
if [ "${CI:-}" = true ] && [ "${SANITIZE:-}" != 1 ] && [ "${ONLY_C:-}" != 1 ]; then
  if make --no-print-directory all SANITIZE=1 >/tmp/keywave-san-build.log 2>&1; then
    ASAN_OPTIONS=detect_leaks=1 run_c_suites build-san
  else
    tail -n 30 /tmp/keywave-san-build.log; echo "[sanitize] build failed"; failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
