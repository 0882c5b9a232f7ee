#!/bin/sh
# kw-sign.sh — signs one keywaved member request (DESIGN.md section 4, docs/api.md
# "Authentication") with nothing but POSIX sh and the openssl command line, and prints
# the four header lines for `curl -H @file` (or four `-H` arguments).
#
#   scripts/kw-sign.sh CLIENT_ID SESSION_SECRET METHOD TARGET [BODY_FILE]
#
#   CLIENT_ID       the client_id enrollment returned
#   SESSION_SECRET  the session_secret enrollment returned (its bytes are the HMAC key);
#                   "-" reads it from the first line of stdin instead, so it stays off
#                   the command line (ps) of this script (openssl still gets it as -hmac)
#   METHOD          GET, POST, PUT, PATCH or DELETE, as sent
#   TARGET          the path exactly as curl will send it, with "?query" only when the
#                   query is non-empty: /api/meetings?filter=my
#   BODY_FILE       the exact bytes curl will send (use curl --data-binary @BODY_FILE);
#                   absent or empty: the hash of the empty string
#
# Output (stdout), one header per line:
#   X-Client-ID: ...
#   X-Timestamp: <ms since the epoch>
#   X-Nonce: <32 hex digits from openssl rand>
#   X-Signature: <lower-case hex HMAC-SHA256>
#
# KW_SIGN_TIMESTAMP and KW_SIGN_NONCE, when set, replace the clock and the random nonce
# (for checking the script against known answers; never reuse a nonce for real requests).
# A signature is good for one request within 5 minutes of its timestamp.
#
# Example:
#   scripts/kw-sign.sh "$CID" "$SECRET" GET /api/keys/count > /tmp/kw.h
#   curl -s -H @/tmp/kw.h http://127.0.0.1:8080/api/keys/count
set -eu

usage() {
    echo "usage: $0 CLIENT_ID SESSION_SECRET|- METHOD TARGET [BODY_FILE]" >&2
    exit 2
}

[ $# -eq 4 ] || [ $# -eq 5 ] || usage
client_id=$1
secret=$2
method=$3
target=$4
body_file=${5:-}

if [ "$secret" = "-" ]; then
    IFS= read -r secret || [ -n "$secret" ] || { echo "$0: no secret on stdin" >&2; exit 2; }
fi
if [ -z "$client_id" ] || [ -z "$secret" ]; then usage; fi
case $method in
    GET | POST | PUT | PATCH | DELETE | HEAD) ;;
    *) echo "$0: METHOD must be upper case (GET, POST, PUT, PATCH, DELETE)" >&2; exit 2 ;;
esac
case $target in
    /*) ;;
    *) echo "$0: TARGET is the path, starting with /" >&2; exit 2 ;;
esac
case $target in
    *\?) echo "$0: drop the trailing '?': an empty query is not part of the target" >&2; exit 2 ;;
esac

# Milliseconds since the epoch. %N is not POSIX: fall back to whole seconds * 1000.
ts=${KW_SIGN_TIMESTAMP:-}
if [ -z "$ts" ]; then
    ts=$(date +%s%3N 2>/dev/null || true)
    case $ts in
        '' | *[!0-9]*) ts=$(date +%s)000 ;;
    esac
fi
nonce=${KW_SIGN_NONCE:-$(openssl rand -hex 16)}

# hex(sha256(body)); `openssl dgst -r` prints "<hex> *<name>".
if [ -n "$body_file" ]; then
    [ -r "$body_file" ] || { echo "$0: cannot read $body_file" >&2; exit 2; }
    body_hash=$(openssl dgst -sha256 -r < "$body_file" | cut -d' ' -f1)
else
    body_hash=$(printf '' | openssl dgst -sha256 -r | cut -d' ' -f1)
fi

sig=$(printf '%s:%s:%s:%s:%s:%s' "$client_id" "$ts" "$nonce" "$method" "$target" "$body_hash" |
    openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
case $sig in
    '' | *[!0-9a-f]*) echo "$0: openssl failed" >&2; exit 1 ;;
esac

printf 'X-Client-ID: %s\nX-Timestamp: %s\nX-Nonce: %s\nX-Signature: %s\n' \
    "$client_id" "$ts" "$nonce" "$sig"
