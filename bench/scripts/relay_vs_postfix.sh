#!/usr/bin/env bash
# Relay benchmark: ringmail vs Postfix, in one run on one machine, both relaying Postfix's
# smtp-source (5 KB messages, 20 inbound connections kept open) through a durable queue to Postfix's
# smtp-sink. Prints end-to-end messages/s (first message in -> last message counted at the sink),
# drain-only messages/s (queue filled with delivery held, then released) and the raw ceiling
# (smtp-source straight into smtp-sink); then ringmail's RSS with 10,000 outbound sessions open.
#   bench/scripts/relay_vs_postfix.sh [MESSAGES] [SESSIONS]     (defaults 100000 and 10000)
# docs/delivery.md explains the method and records figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
SESSIONS=${2:-10000}
SIZE=5120
CONNS=20
BUILD=${RINGMAIL_BUILD:-build/release}
[ -x "$BUILD/engine/ringmail" ] || ./scripts/build.sh release >/dev/null
RINGMAIL=$BUILD/engine/ringmail
SINK=$BUILD/tools/sink/ringmail-sink
INJECT=$BUILD/tools/inject/ringmail-inject
work=$(mktemp -d /var/tmp/ringmail-relay-bench.XXXXXX)
chmod 755 "$work"  # smtp-sink runs as nobody
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for inst in "$work"/pf-*; do [ -d "$inst" ] && ./scripts/postfix-instance.sh stop "$inst" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { /usr/bin/python3 -c "print($1)"; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
forget() { local keep=(); for p in "${pids[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done; pids=("${keep[@]}"); }
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; forget "$1"; }

# smtp-sink with running counters (-c); its count is the last "mesg=N" it printed.
start_smtp_sink() {  # -> sets SINK_PORT, SINK_OUT, SINK_PID
  SINK_PORT=$(free_port); SINK_OUT=$work/smtp-sink.$1.out
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 256 >"$SINK_OUT" 2>&1 &
  SINK_PID=$!; pids+=("$SINK_PID")
  wait_port "$SINK_PORT"
}
sink_count() { tail -c 200 "$SINK_OUT" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }
wait_sink() {  # N TIMEOUT -> prints the time the count reached N
  local deadline; deadline=$(calc "$(now) + $2")
  while :; do
    local c; c=$(sink_count); c=${c:-0}
    [ "$c" -ge "$1" ] && { now; return 0; }
    if [ "$(calc "int($(now) > $deadline)")" = 1 ]; then echo "sink has $c of $1 messages after $2 s" >&2; return 1; fi
    sleep 0.05
  done
}
# Like the accept benchmark: 20 connections kept open (-d), each carrying many messages.
source_into() { smtp-source -d -s $CONNS -l $SIZE -m "$N" -f sender@example.org -t rcpt@example.com "127.0.0.1:$1"; }

connectors() {  # FILE PORT MAX_CONNECTIONS
  cat >"$1" <<EOF
[[connector]]
name = "Sink"
address_spaces = ["*"]
smart_hosts = ["[127.0.0.1]:$2"]
tls = "none"
max_connections_per_destination = $3
EOF
}
start_ringmail() {  # SPOOL CONFIG EXTRA_ARGS... -> sets RM_PORT, RM_PID
  local spool=$1 conf=$2; shift 2
  rm -f "$work/rm.ready"
  "$RINGMAIL" --listen 127.0.0.1:0 --spool "$spool" --config "$conf" --hostname relay.bench \
    --ready-file "$work/rm.ready" --log-level warn "$@" >>"$work/ringmail.log" 2>&1 &
  RM_PID=$!; pids+=("$RM_PID")
  for _ in $(seq 400); do [ -f "$work/rm.ready" ] && break; sleep 0.05; done
  [ -f "$work/rm.ready" ] || { echo "ringmail did not start" >&2; tail "$work/ringmail.log" >&2; exit 1; }
  RM_PORT=$(head -1 "$work/rm.ready" | sed 's/.*://')
}
TIMEOUT=$((N / 20 + 120))  # seconds; generous floor of 20 msg/s

echo "relay benchmark: $N messages of $SIZE bytes, $CONNS inbound connections (smtp-source), sink smtp-sink; work dir $work"
echo "machine: $(nproc) cores, $(uname -r); ringmail from $BUILD"
declare -A e2e drain

# --- (a) raw ceiling: smtp-source straight into smtp-sink
start_smtp_sink raw
t0=$(now); source_into "$SINK_PORT"; t1=$(wait_sink "$N" "$TIMEOUT")
raw_secs=$(calc "$t1 - $t0"); stop_pid "$SINK_PID"

# --- (b) Postfix relaying (relayhost = the sink, 20 connections to it, queue files fsynced by cleanup)
start_smtp_sink pf
pf_port=$(free_port)
./scripts/postfix-instance.sh create "$work/pf-relay" "$pf_port" relay "127.0.0.1:$SINK_PORT" >/dev/null
./scripts/postfix-instance.sh start "$work/pf-relay" >/dev/null 2>&1
wait_port "$pf_port"
t0=$(now); source_into "$pf_port"; t_in=$(now); t1=$(wait_sink "$N" "$TIMEOUT")
e2e[postfix]=$(calc "$t1 - $t0"); pf_in_secs=$(calc "$t_in - $t0")
./scripts/postfix-instance.sh stop "$work/pf-relay" >/dev/null 2>&1; stop_pid "$SINK_PID"

# Postfix drain: the same relay instance, but smtpd puts every message on hold (as the hold
# instance of accept_vs_postfix.sh does). Fill, then `postsuper -H ALL` (hold -> deferred) and
# `postqueue -f` (schedule the deferred queue now); the clock starts before postsuper.
start_smtp_sink pfd
pf_port=$(free_port)
./scripts/postfix-instance.sh create "$work/pf-drain" "$pf_port" relay "127.0.0.1:$SINK_PORT" >/dev/null
echo "smtpd_client_restrictions = check_client_access static:HOLD" >>"$work/pf-drain/etc/main.cf"
./scripts/postfix-instance.sh start "$work/pf-drain" >/dev/null 2>&1
wait_port "$pf_port"
source_into "$pf_port"
for _ in $(seq 600); do [ "$(find "$work/pf-drain/queue/hold" -type f | wc -l)" -ge "$N" ] && break; sleep 0.1; done
t0=$(now)
postsuper -c "$work/pf-drain/etc" -H ALL 2>/dev/null
postqueue -c "$work/pf-drain/etc" -f
t1=$(wait_sink "$N" "$TIMEOUT")
drain[postfix]=$(calc "$t1 - $t0")
./scripts/postfix-instance.sh stop "$work/pf-drain" >/dev/null 2>&1; stop_pid "$SINK_PID"

# --- (c) ringmail relaying (connector to the sink, 20 connections to it, group-committed spool)
start_smtp_sink rm
connectors "$work/rm.toml" "$SINK_PORT" 20
start_ringmail "$work/rm-spool" "$work/rm.toml"
t0=$(now); source_into "$RM_PORT"; t_in=$(now); t1=$(wait_sink "$N" "$TIMEOUT")
e2e[ringmail]=$(calc "$t1 - $t0"); rm_in_secs=$(calc "$t_in - $t0")
stop_pid "$RM_PID"; stop_pid "$SINK_PID"

# ringmail drain: fill with --hold, stop, restart without --hold on the same spool. The clock
# starts before the restart, so spool recovery is counted.
start_smtp_sink rmd
connectors "$work/rmd.toml" "$SINK_PORT" 20
start_ringmail "$work/rmd-spool" "$work/rmd.toml" --hold
source_into "$RM_PORT"
stop_pid "$RM_PID"
t0=$(now)
start_ringmail "$work/rmd-spool" "$work/rmd.toml"
t1=$(wait_sink "$N" "$TIMEOUT")
drain[ringmail]=$(calc "$t1 - $t0")
stop_pid "$RM_PID"; stop_pid "$SINK_PID"

rate() { calc "f'{$N / $1:.0f}'"; }
echo
printf '%-30s %10s %10s\n' "run" seconds "msgs/s"
printf '%-30s %10.2f %10s\n' "raw smtp-source -> smtp-sink" "$raw_secs" "$(rate "$raw_secs")"
printf '%-30s %10.2f %10s\n' "postfix end-to-end" "${e2e[postfix]}" "$(rate "${e2e[postfix]}")"
printf '%-30s %10.2f %10s\n' "ringmail end-to-end" "${e2e[ringmail]}" "$(rate "${e2e[ringmail]}")"
printf '%-30s %10.2f %10s\n' "postfix drain-only" "${drain[postfix]}" "$(rate "${drain[postfix]}")"
printf '%-30s %10.2f %10s\n' "ringmail drain-only" "${drain[ringmail]}" "$(rate "${drain[ringmail]}")"
echo "(inbound part of end-to-end: postfix $(printf %.2f "$pf_in_secs") s, ringmail $(printf %.2f "$rm_in_secs") s)"

# --- RSS with SESSIONS concurrent outbound sessions. ringmail-sink delays its greeting by 60 s, so
# every session stays open; the queue holds SESSIONS*2 small messages. The same spool copy is run
# once with max_connections_per_destination = 1 (baseline) and once with SESSIONS; the difference
# is what the extra sessions cost, including the message bodies read ahead for them.
echo
echo "RSS: $SESSIONS outbound sessions to ringmail-sink (--delay-ms 60000), 1000-byte messages"
sink_port=$(free_port)
"$SINK" --listen "127.0.0.1:$sink_port" --workers 2 --delay-ms 60000 --quiet --stats-file "$work/rss-sink.stats" \
  --ready-file "$work/rss-sink.ready" >/dev/null 2>&1 &
rss_sink=$!; pids+=("$rss_sink")
for _ in $(seq 200); do [ -f "$work/rss-sink.ready" ] && break; sleep 0.05; done
connectors "$work/rss-fill.toml" "$sink_port" 1
start_ringmail "$work/rss-spool" "$work/rss-fill.toml" --hold
"$INJECT" --target "127.0.0.1:$RM_PORT" --count $((SESSIONS * 2)) --size 1000 --connections 20 --quiet >/dev/null
stop_pid "$RM_PID"
open_conns() { grep -o '^open_connections=[0-9]*' "$work/rss-sink.stats" 2>/dev/null | cut -d= -f2 || echo 0; }
rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
measure_rss() {  # MAX_CONNECTIONS EXPECTED_SESSIONS -> prints "rss_kib sessions"
  rm -rf "$work/rss-run"; cp -a "$work/rss-spool" "$work/rss-run"
  connectors "$work/rss.toml" "$sink_port" "$1"
  start_ringmail "$work/rss-run" "$work/rss.toml" --max-outbound "$1"
  local c=0
  for _ in $(seq 300); do c=$(open_conns); [ "${c:-0}" -ge "$2" ] && break; sleep 0.1; done
  sleep 1.5  # the sink's stats file is rewritten each second; let both sides settle
  echo "$(rss_of "$RM_PID") $(ls /proc/"$RM_PID"/fd | wc -l)"
  kill -KILL "$RM_PID"; wait "$RM_PID" 2>/dev/null || true; forget "$RM_PID"
  for _ in $(seq 100); do [ "$(open_conns)" -eq 0 ] && break; sleep 0.1; done
}
read -r base_rss base_fds < <(measure_rss 1 1)
read -r full_rss full_fds < <(measure_rss "$SESSIONS" "$SESSIONS")
sessions_open=$((full_fds - base_fds + 1))
printf '%-34s %10s %10s\n' "ringmail" "VmRSS KiB" "open fds"
printf '%-34s %10s %10s\n' "1 session (baseline)" "$base_rss" "$base_fds"
printf '%-34s %10s %10s\n' "$SESSIONS sessions" "$full_rss" "$full_fds"
echo "per extra session: $(calc "f'{($full_rss - $base_rss) * 1024 / max(1, $sessions_open - 1):.0f}'") bytes" \
     "(RSS difference / $((sessions_open - 1)) extra sockets; includes the bodies read ahead for them)"
