#!/usr/bin/env bash
# ringmail's main job on loopback, for a new user: installs what is needed, builds, starts the
# daemon on a free port with a fresh spool, relays a batch of messages into it with the injector,
# and prints what happened (accept rate, reply codes, what the spool holds, a clean shutdown).
#   scripts/demo.sh [MESSAGES]        (default 20000)
# Delivery to next hops arrives with the delivery issue; until then the daemon holds what it accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
BUILD=build/release
work=$(mktemp -d /var/tmp/ringmail-demo.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== starting ringmail (spool $work/spool)"
"$BUILD/engine/ringmail" --listen 127.0.0.1:0 --spool "$work/spool" --hostname demo.ringmail.local \
  --ready-file "$work/ready" --hold 2> "$work/ringmail.log" &
pid=$!
for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.05; done
[ -f "$work/ready" ] || { cat "$work/ringmail.log"; exit 1; }
addr=$(head -1 "$work/ready")
echo "   listening on $addr"

echo "== injecting $N messages of 5 KB over 20 connections"
"$BUILD/tools/inject/ringmail-inject" --target "$addr" --count "$N" --size 5000 --connections 20 \
  --per-connection 100 --pipelining --log "$work/inject.log"

echo "== stopping ringmail with SIGTERM (finishes sessions, syncs the spool)"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
echo "   exit code $rc"
sed 's/^/   /' "$work/ringmail.log"

echo "== the spool after shutdown"
"$BUILD/tools/spool/ringmail-spool" --spool "$work/spool" check
queued=$("$BUILD/tools/spool/ringmail-spool" --spool "$work/spool" list --json |
         /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
acked=$(grep -c '^250 ' "$work/inject.log" || true)
echo "   $acked messages got 250, $queued are in the spool"
"$BUILD/tools/spool/ringmail-spool" --spool "$work/spool" list | head -5
[ "$acked" -eq "$queued" ]
