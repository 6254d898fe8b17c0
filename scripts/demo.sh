#!/usr/bin/env bash
# ringmail's main job on loopback, for a new user: installs what is needed, builds, and runs a
# complete relay: a test receiver (ringmail-sink), ringmail with a connector file that sends
# everything to it, and the injector submitting N messages (default 100000, 5 KB, 20 connections).
# Prints messages/s accepted, messages/s delivered end to end, and the delivery outcomes.
#   scripts/demo.sh [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
BUILD=build/release
work=$(mktemp -d /var/tmp/ringmail-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; return 1; }
stat_of() { sed -n "s/^$2=//p" "$1" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

echo "== starting the receiver (ringmail-sink) and ringmail"
"$BUILD/tools/sink/ringmail-sink" --listen 127.0.0.1:0 --ready-file "$work/sink.ready" \
  --stats-file "$work/sink.stats" --quiet > "$work/sink.log" 2>&1 &
pids+=($!)
wait_file "$work/sink.ready"
sink=$(head -1 "$work/sink.ready")
cat > "$work/connectors.toml" <<TOML
# Everything goes to the local test receiver.
[[connector]]
name = "demo-sink"
address_spaces = ["*"]
smart_hosts = ["[${sink%:*}]:${sink##*:}"]
max_connections_per_destination = 20
TOML
"$BUILD/engine/ringmail" --listen 127.0.0.1:0 --spool "$work/spool" --config "$work/connectors.toml" \
  --hostname demo.ringmail.local --ready-file "$work/ready" 2> "$work/ringmail.log" &
rm_pid=$!
pids+=($rm_pid)
wait_file "$work/ready"
addr=$(head -1 "$work/ready")
echo "   receiver on $sink, ringmail on $addr (spool $work/spool)"

echo "== injecting $N messages of 5 KB over 20 connections"
t0=$(now)
"$BUILD/tools/inject/ringmail-inject" --target "$addr" --count "$N" --size 5000 --connections 20 \
  --per-connection 100 --pipelining --quiet --log "$work/inject.log" | sed 's/^/   /'
t_in=$(now)
acked=$(grep -c '^250 ' "$work/inject.log" || true)
deadline=$(( $(date +%s) + 300 ))
while [ "$(stat_of "$work/sink.stats" messages_accepted)" -lt "$acked" ] && [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 0.05
done
t_out=$(now)
delivered=$(stat_of "$work/sink.stats" messages_accepted)

echo "== stopping ringmail with SIGTERM (finishes sessions, syncs the spool)"
kill -TERM "$rm_pid"; wait "$rm_pid" && rc=0 || rc=$?
echo "   exit code $rc"
grep -E "stopped:|delivery:" "$work/ringmail.log" | sed 's/^.*info: /   /'
queued=$("$BUILD/tools/spool/ringmail-spool" --spool "$work/spool" list --json |
         /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

/usr/bin/python3 - "$t0" "$t_in" "$t_out" "$acked" "$delivered" "$queued" <<'PY'
import sys
t0, t_in, t_out = map(float, sys.argv[1:4]); acked, delivered, queued = map(int, sys.argv[4:7])
print("== summary")
print(f"   accepted : {acked} messages in {t_in - t0:.2f} s = {acked / (t_in - t0):,.0f} msg/s (250 after the commit is durable)")
print(f"   delivered: {delivered} messages at the receiver, first in to last out {t_out - t0:.2f} s = "
      f"{delivered / (t_out - t0):,.0f} msg/s end to end")
print(f"   still queued in the spool after shutdown: {queued}")
PY
[ "$delivered" -ge "$acked" ] && [ "$rc" -eq 0 ]
