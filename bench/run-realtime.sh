#!/usr/bin/env bash
# Realtime benchmark (issue 4 point 5, DESIGN.md section 11): keywaved against the Node peer
# of bench/peer/ (Express + Socket.IO 4.8, the seeds' relay) in the same run, with the same C
# load generator (build/bench/realtime):
#   relay  N pairs (member device on "/" present in the meeting, guest on "/external"); each
#          guest sends guest:signal_message to its member device, closed loop with W messages
#          in flight per pair: delivered msgs/s, p50/p99 latency (guest send -> member
#          receives), server CPU µs per message (/proc/<pid>/stat over the timed interval)
#   idle   K idle guest connections (Engine.IO open + Socket.IO CONNECT, answering pings) in
#          one server process: VmRSS before and after, KiB per connection; then the
#          server's CPU share over 30 s in which the connections only answer pings
# Each server runs alone on CPU 1 and the load generator on CPU 0 (taskset, when there are
# two cores), one server after the other. keywaved gets KEYWAVE_GUEST_EVENTS_PER_MINUTE
# raised (its default of 100 per guest socket would cap the relay); the peer has no limit.
#
# Usage: bench/run-realtime.sh [BUILD_DIR]        (default: build; `make bench` passes it)
# Environment (defaults in brackets):
#   RT_BENCH_PAIRS [1000]     connected (member, guest) pairs
#   RT_BENCH_MEETINGS [1]     meetings the pairs are spread over (equal blocks; all member
#                             devices belong to the user that owns every meeting)
#   RT_BENCH_WINDOW [1]       messages in flight per pair (closed loop)
#   RT_BENCH_RATE [0]         > 0: open loop at this total offered rate (msgs/s) instead
#   RT_BENCH_WARMUP [5]       seconds of relay before the clock starts
#   RT_BENCH_SECONDS [20]     timed seconds of relay
#   RT_BENCH_MSG_CHARS [256]  base64 characters of each encrypted_message
#   RT_BENCH_IDLE [19000]     idle connections (the open-file hard limit here is 20 000);
#                             0 skips the idle measurement
#   RT_BENCH_GUEST_EVENTS [10000000]  keywaved's KEYWAVE_GUEST_EVENTS_PER_MINUTE
#   RT_BENCH_KEEP=1           keep the temporary directory (logs, data)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
keywaved=$build/keywaved
http_load=$build/bench/http_load
load=$build/bench/realtime
pairs=${RT_BENCH_PAIRS:-1000}
window=${RT_BENCH_WINDOW:-1}
rate=${RT_BENCH_RATE:-0}
warmup=${RT_BENCH_WARMUP:-5}
seconds=${RT_BENCH_SECONDS:-20}
msg_chars=${RT_BENCH_MSG_CHARS:-256}
idle=${RT_BENCH_IDLE:-19000}
n_meetings=${RT_BENCH_MEETINGS:-1}
guest_events=${RT_BENCH_GUEST_EVENTS:-10000000}

die() { echo "run-realtime: $*" >&2; exit 1; }
[ -x "$keywaved" ] || die "$keywaved missing (make all)"
[ -x "$http_load" ] || die "$http_load missing (make all)"
[ -x "$load" ] || die "$load missing (make all)"
command -v node >/dev/null || die "node missing (scripts/deps.sh)"
command -v curl >/dev/null || die "curl missing"
[ "$n_meetings" -ge 1 ] && [ $(( pairs % n_meetings )) -eq 0 ] ||
    die "RT_BENCH_PAIRS ($pairs) must be a multiple of RT_BENCH_MEETINGS ($n_meetings)"

# Both servers and the load generator hold up to $idle sockets: raise the soft limit.
need=$(( idle + 200 ))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    die "open-file hard limit $hard < $need (lower RT_BENCH_IDLE)"
fi
ulimit -Sn "$hard"

if [ ! -d "$here/peer/node_modules/socket.io" ] || [ ! -d "$here/peer/node_modules/express" ]; then
    (cd "$here/peer" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in bench/peer failed"
fi

pin_load=() pin_server=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_load=(taskset -c 0) pin_server=(taskset -c 1)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keywave-bench-rt-XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "${RT_BENCH_KEEP:-0}" = 1 ]; then
        echo "run-realtime: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range the clients use
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port"
}

wait_healthy() { # port
    for _ in $(seq 1 200); do
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

# Makes the meetings (owned by the first device) and registers the guests, an equal block
# per meeting: $1/meetings.txt, $1/guests.txt.
prepare() { # dir port
    local per=$(( pairs / n_meetings )) k meeting token
    : >"$1/meetings.txt"
    : >"$1/guests.txt"
    for k in $(seq 0 $(( n_meetings - 1 ))); do
        read -r meeting token < <("$http_load" meeting "127.0.0.1:$2" "$1/devices.txt")
        echo "$meeting" >>"$1/meetings.txt"
        "$load" register "127.0.0.1:$2" "$tmp/bodies.txt" "$token" $(( k * per )) "$per" \
            "$1/guests.part" 2>/dev/null
        cat "$1/guests.part" >>"$1/guests.txt"
    done
    rm -f "$1/guests.part"
}

relay() { # name port devices guests meetings
    "${pin_load[@]}" "$load" relay "127.0.0.1:$2" "$3" "$4" "$5" --pairs "$pairs" \
        --window "$window" --rate "$rate" --warmup "$warmup" --seconds "$seconds" \
        --msg-chars "$msg_chars" --server-pid "$server_pid" >"$tmp/$1/relay.out" ||
        die "$1: relay failed (see $tmp/$1)"
}

idle_run() { # name port guests
    "${pin_load[@]}" "$load" idle "127.0.0.1:$2" "$3" "$idle" --server-pid "$server_pid" \
        >"$tmp/$1/idle.out" 2>"$tmp/$1/idle.err" || {
        echo "run-realtime: $1: idle connections failed: $(tail -n 1 "$tmp/$1/idle.err")" >&2
        echo "failed $(tail -n 1 "$tmp/$1/idle.err")" >"$tmp/$1/idle.out"
    }
}

# Registration bodies (libkeywave: each its own identity and signed pre-key), shared.
"$http_load" gen-guests "$pairs" "$tmp/bodies.txt" 2>/dev/null

# ---- keywaved ----
mkdir -p "$tmp/keywaved"
port=$(free_port)
export KEYWAVE_DATA_DIR=$tmp/keywaved/data KEYWAVE_LISTEN=127.0.0.1:$port
export KEYWAVE_GUEST_EVENTS_PER_MINUTE=$guest_events
unset KEYWAVE_PUBLIC_URL KEYWAVE_TLS_CERT KEYWAVE_TLS_KEY
"${pin_server[@]}" "$keywaved" >"$tmp/keywaved/stdout.log" 2>"$tmp/keywaved/stderr.log" &
server_pid=$!
wait_healthy "$port"
{
    "$keywaved" user add bench
    for _ in $(seq 2 "$pairs"); do "$keywaved" user code bench; done
} >"$tmp/keywaved/codes.txt" 2>/dev/null
"$http_load" enroll "127.0.0.1:$port" "$tmp/keywaved/codes.txt" "$tmp/keywaved/devices.txt"
prepare "$tmp/keywaved" "$port"
relay keywaved "$port" "$tmp/keywaved/devices.txt" "$tmp/keywaved/guests.txt" "$tmp/keywaved/meetings.txt"
stop_server
# Idle connections in a fresh process on the same data (the guests are stored).
if [ "$idle" -gt 0 ]; then
    "${pin_server[@]}" "$keywaved" >>"$tmp/keywaved/stdout.log" 2>>"$tmp/keywaved/stderr.log" &
    server_pid=$!
    wait_healthy "$port"
    idle_run keywaved "$port" "$tmp/keywaved/guests.txt"
    stop_server
fi
unset KEYWAVE_GUEST_EVENTS_PER_MINUTE

# ---- Node peer ----
peer_prepare() { # dir port
    "$http_load" peer-devices "127.0.0.1:$2" "$pairs" "$1/devices.txt"
    prepare "$1" "$2"
}
mkdir -p "$tmp/peer" "$tmp/peer/idle"
port=$(free_port)
PORT=$port "${pin_server[@]}" node "$here/peer/server.js" >"$tmp/peer/stdout.log" 2>"$tmp/peer/stderr.log" &
server_pid=$!
wait_healthy "$port"
peer_prepare "$tmp/peer" "$port"
relay peer "$port" "$tmp/peer/devices.txt" "$tmp/peer/guests.txt" "$tmp/peer/meetings.txt"
stop_server
# Idle in a fresh process too (its state is in memory: registered again first).
if [ "$idle" -gt 0 ]; then
    PORT=$port "${pin_server[@]}" node "$here/peer/server.js" >>"$tmp/peer/stdout.log" 2>>"$tmp/peer/stderr.log" &
    server_pid=$!
    wait_healthy "$port"
    peer_prepare "$tmp/peer/idle" "$port"
    idle_run peer "$port" "$tmp/peer/idle/guests.txt"
    stop_server
fi

# ---- report ----
val() { awk -v k="$2" '$1 == k {print $2}' "$tmp/$1.out"; }
pinning="not pinned"
[ ${#pin_load[@]} -gt 0 ] && pinning="load generator on CPU 0, server on CPU 1"
loop="closed loop, $window in flight per pair"
[ "$rate" -gt 0 ] && loop="open loop, $rate msgs/s offered"
echo "# keywave realtime benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) cores," \
    "node $(node --version), $pinning"
echo "# relay: $pairs pairs in $n_meetings meeting(s), $loop, ${msg_chars}-character messages, ${warmup} s warm-up + ${seconds} s timed"
printf '%-9s %10s %9s %8s %8s %11s %12s %s\n' server delivered 'msgs/s' 'p50 ms' 'p99 ms' \
    'cpu us/msg' 'msgs/cpu-s' 'errors'
for srv in keywaved peer; do
    printf '%-9s %10s %9s %8s %8s %11s %12s %s\n' "$srv" "$(val "$srv/relay" delivered)" \
        "$(val "$srv/relay" msgs_per_s)" "$(val "$srv/relay" p50_ms)" "$(val "$srv/relay" p99_ms)" \
        "$(val "$srv/relay" server_cpu_us_per_msg)" "$(val "$srv/relay" msgs_per_server_cpu_s)" \
        "ack=$(val "$srv/relay" ack_errors) misrouted=$(val "$srv/relay" misrouted) cpu_share=$(val "$srv/relay" server_cpu_share)"
done
awk -v a="$(val keywaved/relay msgs_per_server_cpu_s)" -v b="$(val peer/relay msgs_per_server_cpu_s)" \
    -v x="$(val keywaved/relay msgs_per_s)" -v y="$(val peer/relay msgs_per_s)" \
    'BEGIN{r = b > 0 ? a / b : 0; printf "relay ratio keywaved/peer: msgs per server CPU second %.2fx (target >= 10x: %s), msgs/s %.2fx\n", r, (r >= 10 ? "met" : "NOT met"), (y > 0 ? x / y : 0)}'
if [ "$idle" -eq 0 ]; then
    exit 0
fi
echo "# idle: $idle connections on /external (guests reused round robin), VmRSS of the server"
printf '%-9s %12s %12s %12s %s\n' server 'rss before' 'rss after' 'KiB/conn' note
for srv in keywaved peer; do
    if [ "$(val "$srv/idle" failed)" != "" ] || ! grep -q kib_per_conn "$tmp/$srv/idle.out"; then
        printf '%-9s %12s %12s %12s %s\n' "$srv" - - - "$(cat "$tmp/$srv/idle.out")"
        continue
    fi
    printf '%-9s %12s %12s %12s %s\n' "$srv" "$(val "$srv/idle" rss_before_kib) KiB" \
        "$(val "$srv/idle" rss_after_kib) KiB" "$(val "$srv/idle" kib_per_conn)" \
        "setup $(val "$srv/idle" setup_seconds) s, retries $(val "$srv/idle" handshake_retries), server CPU while idle $(val "$srv/idle" idle_cpu_share)"
done
awk -v k="$(val keywaved/idle kib_per_conn)" \
    'BEGIN{ if (k != "") printf "idle: keywaved %.2f KiB per connection (target <= 8 KiB: %s)\n", k, (k <= 8 ? "met" : "NOT met")}'
