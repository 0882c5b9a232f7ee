#!/usr/bin/env bash
# Runs bench/crypto and `openssl speed -evp aes-128-gcm` in the same run, pinned to one
# core, and prints the figures side by side with the frame/OpenSSL ratio.
# Usage: bench/run-crypto.sh [path/to/crypto-bench] [seconds per figure]
set -euo pipefail
bin=${1:-build/bench/crypto}
secs=${2:-3}
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

echo "# keywave crypto benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) cores"
kw=$("${pin[@]}" "$bin" "$secs")
echo "$kw"

ossl=$("${pin[@]}" openssl speed -seconds "$secs" -bytes 1024 -evp aes-128-gcm 2>/dev/null | tail -n 1)
ossl50=$("${pin[@]}" openssl speed -seconds "$secs" -bytes 51200 -evp aes-128-gcm 2>/dev/null | tail -n 1)
# The last line reads e.g. "AES-128-GCM   1825000.00k": thousands of bytes per second.
k1=$(awk '{v=$NF; sub(/k$/,"",v); print v}' <<<"$ossl")
k50=$(awk '{v=$NF; sub(/k$/,"",v); print v}' <<<"$ossl50")
o1=$(awk -v k="$k1" 'BEGIN{printf "%.1f", k*1000/1e6}')
o50=$(awk -v k="$k50" 'BEGIN{printf "%.1f", k*1000/1e6}')
echo "openssl_aes128gcm_1024_mb_per_s $o1 MB/s"
echo "openssl_aes128gcm_51200_mb_per_s $o50 MB/s"
f1=$(awk '/^frame_encrypt_1024_mb_per_s/{print $2}' <<<"$kw")
f50=$(awk '/^frame_encrypt_51200_mb_per_s/{print $2}' <<<"$kw")
awk -v f="$f1" -v o="$o1" 'BEGIN{printf "frame_vs_openssl_1024 %.0f %% (target >= 80 %%)\n", 100*f/o}'
awk -v f="$f50" -v o="$o50" 'BEGIN{printf "frame_vs_openssl_51200 %.0f %%\n", 100*f/o}'
setups=$(awk '/^session_setups_per_s/{print $2}' <<<"$kw")
awk -v s="$setups" 'BEGIN{printf "session_setups_target %s (target >= 400/s on one core)\n", (s>=400?"met":"NOT met")}'
