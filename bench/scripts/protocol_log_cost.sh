#!/usr/bin/env bash
# What the outbound protocol log costs: ringmail relaying smtp-source's load (5 KB messages, 20
# inbound connections kept open) to Postfix's smtp-sink through one smart-host connector, end to
# end (first message in -> last message counted at the sink), with `protocol_log` off and on,
# alternating ROUNDS times in one run. Prints seconds, messages/s and the log's size per message.
#   bench/scripts/protocol_log_cost.sh [MESSAGES] [ROUNDS]     (defaults 50000 and 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50000}
ROUNDS=${2:-2}
BUILD=${RINGMAIL_BUILD:-build/release}
[ -x "$BUILD/engine/ringmail" ] || ./scripts/build.sh release >/dev/null
work=$(mktemp -d /var/tmp/ringmail-plog-bench.XXXXXX)
chmod 755 "$work"  # smtp-sink runs as nobody
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { /usr/bin/python3 -c "print($1)"; }

run() {  # on|off -> prints "seconds log_bytes"
  local mode=$1 sink_port sink_out sink_pid rm_pid deadline c
  sink_port=$(free_port); sink_out=$work/sink.out
  smtp-sink -u nobody -c "127.0.0.1:$sink_port" 256 >"$sink_out" 2>&1 &
  sink_pid=$!; pids+=("$sink_pid")
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$sink_port") 2>/dev/null && break; sleep 0.05; done
  cat >"$work/c.toml" <<EOF
[[connector]]
name = "Sink"
address_spaces = ["*"]
smart_hosts = ["[127.0.0.1]:$sink_port"]
tls = "none"
max_connections_per_destination = 20
protocol_log = $([ "$mode" = on ] && echo true || echo false)
EOF
  rm -rf "$work/spool" "$work/plog" "$work/ready"
  "$BUILD/engine/ringmail" --listen 127.0.0.1:0 --spool "$work/spool" --config "$work/c.toml" --hostname relay.bench \
    --protocol-log-dir "$work/plog" --ready-file "$work/ready" --log-level warn >>"$work/ringmail.log" 2>&1 &
  rm_pid=$!; pids+=("$rm_pid")
  for _ in $(seq 400); do [ -f "$work/ready" ] && break; sleep 0.05; done
  local port; port=$(head -1 "$work/ready" | sed 's/.*://')
  local t0 t1; t0=$(now)
  smtp-source -d -s 20 -l 5120 -m "$N" -f sender@example.org -t rcpt@example.com "127.0.0.1:$port"
  deadline=$(calc "$(now) + $N / 20 + 120")
  while :; do
    c=$(tail -c 200 "$sink_out" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true)
    [ "${c:-0}" -ge "$N" ] && break
    [ "$(calc "int($(now) > $deadline)")" = 1 ] && { echo "sink has ${c:-0} of $N" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(now)
  kill -TERM "$rm_pid"; wait "$rm_pid" || true
  kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
  pids=()
  echo "$(calc "$t1 - $t0") $(du -sb "$work/plog" | cut -f1)"
}

echo "protocol log cost: $N messages of 5120 bytes, 20 inbound connections, smtp-sink; ringmail from $BUILD"
printf '%-6s %-14s %9s %9s %16s\n' round protocol_log seconds msgs/s "log bytes/msg"
for r in $(seq "$ROUNDS"); do
  for mode in off on; do
    read -r secs bytes < <(run "$mode")
    printf '%-6s %-14s %9.2f %9.0f %16.0f\n' "$r" "$mode" "$secs" "$(calc "$N / $secs")" "$(calc "$bytes / $N")"
  done
done
