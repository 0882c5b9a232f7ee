#!/usr/bin/env bash
# HTTP benchmark (issue 3 point 6, DESIGN.md section 11): keywaved against the Node peer of
# bench/peer/ (the seeds' Express design) in the same run, with the same load generator
# (build/bench/http_load) and 64 keep-alive connections, on two scenarios:
#   fetch     a member device fetches a guest's key bundle (GET /api/meetings/:id/external/:sid/keys)
#   register  guest registration (POST /api/meetings/external/register)
#   healthz   GET /healthz, for scale only: what the HTTP layer alone does on this machine
# Each server runs alone on CPU 1 and the load generator on CPU 0 (taskset, when there are
# two cores), one server after the other. Prints each server's figures and the ratio.
#
# Usage: bench/run-http.sh [BUILD_DIR]        (default: build; `make bench` passes it)
# Environment (defaults in brackets):
#   HTTP_BENCH_CONNS [64]            connections of the load generator
#   HTTP_BENCH_REGISTRATIONS [20000] timed registrations per server
#   HTTP_BENCH_DEVICES [128]         member devices (one user, all in the meeting)
#   HTTP_BENCH_GUESTS [120]          guests whose bundles are fetched
#   HTTP_BENCH_PER_PAIR [3]          fetches per (device, guest) pair: keywaved allows 3
#                                    per minute (INV-2), in a table of 16384 pairs per minute
#   HTTP_BENCH_HEALTHZ [100000]      GET /healthz requests (informational: the HTTP layer's
#                                    ceiling on this machine, no target)
#   HTTP_BENCH_SECONDS [60]          cap per timed scenario (the fixed request sets end first)
#   HTTP_BENCH_KEEP=1                keep the temporary directory (logs, data)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
keywaved=$build/keywaved
load=$build/bench/http_load
conns=${HTTP_BENCH_CONNS:-64}
n_reg=${HTTP_BENCH_REGISTRATIONS:-20000}
n_dev=${HTTP_BENCH_DEVICES:-128}
n_guest=${HTTP_BENCH_GUESTS:-120}
per_pair=${HTTP_BENCH_PER_PAIR:-3}
cap=${HTTP_BENCH_SECONDS:-60}
warm_guests=4     # guests fetched only during the warm-up
warm_per_pair=2
warm_reg=1000     # registrations sent before the timed ones
n_health=${HTTP_BENCH_HEALTHZ:-100000} # GET /healthz: the HTTP layer alone, for scale

die() { echo "run-http: $*" >&2; exit 1; }
[ -x "$keywaved" ] || die "$keywaved missing (make all)"
[ -x "$load" ] || die "$load missing (make all)"
command -v node >/dev/null || die "node missing (scripts/deps.sh)"
command -v curl >/dev/null || die "curl missing"
pairs=$(( n_dev * (n_guest + warm_guests) ))
[ "$pairs" -le 16384 ] || die "$pairs (device, guest) pairs exceed keywaved's 16384 per minute"
[ "$per_pair" -le 3 ] || die "keywaved allows 3 fetches per pair per minute"

if [ ! -d "$here/peer/node_modules/express" ]; then
    (cd "$here/peer" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in bench/peer failed"
fi

# CPU 0: load generator; CPU 1: the server under test.
pin_load=() pin_server=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_load=(taskset -c 0) pin_server=(taskset -c 1)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keywave-bench-http-XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "${HTTP_BENCH_KEEP:-0}" = 1 ]; then
        echo "run-http: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port"
}

wait_healthy() { # port
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || die "server on port $1 exited (see $tmp)"
        sleep 0.05
    done
    die "server on port $1 did not answer /healthz"
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# CPU time (user + system, all threads) of the server so far, in ms.
cpu_ms() {
    local tck stat
    tck=$(getconf CLK_TCK)
    stat=$(cat "/proc/$server_pid/stat")
    stat=${stat##*) }   # drop "pid (comm) ": field 14 is now field 12
    awk -v t="$tck" '{printf "%d", ($12 + $13) * 1000 / t}' <<<"$stat"
}

# Runs a timed scenario: "$@" is the http_load command; output kept in $tmp/$name.out,
# plus the server's CPU ms spent during it.
timed() { # name cmd...
    local name=$1 c0 c1
    shift
    c0=$(cpu_ms)
    "${pin_load[@]}" "$load" "$@" >"$tmp/$name.out"
    c1=$(cpu_ms)
    echo "server_cpu_ms $(( c1 - c0 ))" >>"$tmp/$name.out"
}

# Registration bodies: unique identity and signed pre-key each; generated on both cores.
n_bodies=$(( n_guest + warm_guests + warm_reg + n_reg ))
half=$(( n_bodies / 2 ))
"$load" gen-guests "$half" "$tmp/g1.txt" 2>/dev/null &
gen_pid=$!
"$load" gen-guests "$(( n_bodies - half ))" "$tmp/g2.txt" 2>/dev/null
wait "$gen_pid"
cat "$tmp/g1.txt" "$tmp/g2.txt" >"$tmp/guests.txt"
rm -f "$tmp/g1.txt" "$tmp/g2.txt"

# Data both servers get: n_dev member devices of one user, a meeting with allow_external
# owned by the first device, an invitation without max_uses, and the guests to fetch
# (registered before the clock starts). $1: name, $2: port; devices file already made.
prepare() {
    local name=$1 port=$2 d=$tmp/$1
    read -r meeting token < <("$load" meeting "127.0.0.1:$port" "$d/devices.txt")
    echo "$meeting" >"$d/meeting"
    echo "$token" >"$d/token"
    "$load" register "127.0.0.1:$port" "$tmp/guests.txt" "$token" 0 $(( n_guest + warm_guests )) \
        --conns 8 --sessions "$d/all_sessions.txt" >"$d/prep_register.out"
    [ "$(wc -l <"$d/all_sessions.txt")" -eq $(( n_guest + warm_guests )) ] ||
        die "$name: guest registration failed during setup (see $d)"
    head -n "$warm_guests" "$d/all_sessions.txt" >"$d/warm_sessions.txt"
    tail -n +"$(( warm_guests + 1 ))" "$d/all_sessions.txt" >"$d/sessions.txt"
}

# Warm-up (not reported), then the timed scenarios on fresh state: healthz, fetch, register.
scenarios() { # name port
    local name=$1 port=$2 d=$tmp/$1 meeting token first
    meeting=$(cat "$d/meeting")
    token=$(cat "$d/token")
    "${pin_load[@]}" "$load" fetch "127.0.0.1:$port" "$d/devices.txt" "$d/warm_sessions.txt" "$meeting" \
        --devices "$n_dev" --guests "$warm_guests" --per-pair "$warm_per_pair" --conns "$conns" >"$d/warm_fetch.out"
    first=$(( n_guest + warm_guests ))
    "${pin_load[@]}" "$load" register "127.0.0.1:$port" "$tmp/guests.txt" "$token" "$first" "$warm_reg" \
        --conns "$conns" >"$d/warm_register.out"
    timed "$name/healthz" get "127.0.0.1:$port" /healthz "$n_health" --conns "$conns" --seconds "$cap"
    timed "$name/fetch" fetch "127.0.0.1:$port" "$d/devices.txt" "$d/sessions.txt" "$meeting" \
        --devices "$n_dev" --guests "$n_guest" --per-pair "$per_pair" --conns "$conns" --seconds "$cap"
    timed "$name/register" register "127.0.0.1:$port" "$tmp/guests.txt" "$token" \
        "$(( first + warm_reg ))" "$n_reg" --conns "$conns" --seconds "$cap"
}

# ---- keywaved ----
mkdir -p "$tmp/keywaved"
port=$(free_port)
export KEYWAVE_DATA_DIR=$tmp/keywaved/data KEYWAVE_LISTEN=127.0.0.1:$port
unset KEYWAVE_PUBLIC_URL KEYWAVE_TLS_CERT KEYWAVE_TLS_KEY
"${pin_server[@]}" "$keywaved" >"$tmp/keywaved/stdout.log" 2>"$tmp/keywaved/stderr.log" &
server_pid=$!
wait_healthy "$port"
{
    "$keywaved" user add bench
    for _ in $(seq 2 "$n_dev"); do "$keywaved" user code bench; done
} >"$tmp/keywaved/codes.txt"
"$load" enroll "127.0.0.1:$port" "$tmp/keywaved/codes.txt" "$tmp/keywaved/devices.txt"
prepare keywaved "$port"
scenarios keywaved "$port"
stop_server

# ---- Node peer ----
mkdir -p "$tmp/peer"
port=$(free_port)
PORT=$port "${pin_server[@]}" node "$here/peer/server.js" >"$tmp/peer/stdout.log" 2>"$tmp/peer/stderr.log" &
server_pid=$!
wait_healthy "$port"
"$load" peer-devices "127.0.0.1:$port" "$n_dev" "$tmp/peer/devices.txt"
prepare peer "$port"
scenarios peer "$port"
stop_server

# ---- report ----
val() { awk -v k="$2" '$1 == k {print $2}' "$tmp/$1.out"; }
statuses() { sed -n 's/^status //p' "$tmp/$1.out"; }
pinning="not pinned"
[ ${#pin_load[@]} -gt 0 ] && pinning="load generator on CPU 0, server on CPU 1"
echo "# keywave HTTP benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) cores," \
    "node $(node --version), ${conns} connections, $pinning"
printf '%-9s %-9s %9s %8s %8s %8s %10s %s\n' scenario server requests 'req/s' 'p50 ms' 'p99 ms' \
    'cpu us/req' statuses
for sc in fetch register healthz; do
    for srv in keywaved peer; do
        n=$(val "$srv/$sc" requests)
        cpu=$(val "$srv/$sc" server_cpu_ms)
        printf '%-9s %-9s %9s %8s %8s %8s %10s %s\n' "$sc" "$srv" "$n" "$(val "$srv/$sc" rps)" \
            "$(val "$srv/$sc" p50_ms)" "$(val "$srv/$sc" p99_ms)" \
            "$(awk -v c="$cpu" -v n="$n" 'BEGIN{printf "%.0f", n ? c * 1000 / n : 0}')" \
            "$(statuses "$srv/$sc")"
    done
    awk -v a="$(val "keywaved/$sc" rps)" -v b="$(val "peer/$sc" rps)" -v s="$sc" \
        'BEGIN{r = b > 0 ? a / b : 0; t = s == "healthz" ? "no target" : "target >= 20x: " (r >= 20 ? "met" : "NOT met"); printf "%-9s ratio     keywaved/peer = %.2fx (%s)\n", s, r, t}'
done
echo "fetch set: $n_dev devices x $n_guest guests x $per_pair = $(( n_dev * n_guest * per_pair )) requests;" \
    "register set: $n_reg bodies (unique identity + signed pre-key each); warm-up before each:" \
    "$(( n_dev * warm_guests * warm_per_pair )) fetches, $warm_reg registrations"
