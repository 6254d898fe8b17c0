#!/usr/bin/env bash
# inject_sink_test: ringmail-inject against Postfix's smtp-sink, an SMTP receiver we did not write.
# Starts smtp-sink on a free loopback port, injects 2000 messages lock-step and 2000 pipelined
# (from 127.0.0.2), and checks the summaries and the --log file. Kills only the sink it started.
# usage: inject_sink_test.sh /path/to/ringmail-inject /usr/sbin/smtp-sink
set -euo pipefail
inject=$1
sink=$2
work=$(mktemp -d)
sink_pid=""
cleanup() {
  if [[ -n "$sink_pid" ]]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: bind port 0 and read what the kernel chose.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user_args=()
if [[ $(id -u) == 0 ]]; then user_args=(-u nobody); fi
"$sink" "${user_args[@]}" "127.0.0.1:$port" 256 &
sink_pid=$!

# Wait until the sink accepts connections (bounded: 200 probes).
ready=0
for _ in $(seq 200); do
  if /usr/bin/python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),timeout=1); s.close()" 2>/dev/null; then
    ready=1; break
  fi
  kill -0 "$sink_pid" 2>/dev/null || { echo "smtp-sink exited"; exit 1; }
  sleep 0.05
done
[[ $ready == 1 ]] || { echo "smtp-sink did not start on port $port"; exit 1; }

fail() { echo "FAIL: $*"; exit 1; }

check_run() {  # name, extra flags...
  local name=$1; shift
  local log="$work/$name.log"
  local out="$work/$name.json"
  "$inject" --target "127.0.0.1:$port" --count 2000 --size 3000 --connections 10 --quiet --json \
      --log "$log" "$@" > "$out" || fail "$name: exit code $? ($(cat "$out"))"
  cat "$out"
  grep -q '"accepted": 2000,' "$out" || fail "$name: summary does not say 2000 accepted"
  grep -q '"attempted": 2000,' "$out" || fail "$name: summary does not say 2000 attempted"
  local lines ok unique
  lines=$(wc -l < "$log")
  ok=$(grep -c '^250 <ringmail-inject\.[0-9]*\.[0-9]*\.[0-9a-f]*@inject\.local> [^ ]*$' "$log" || true)
  unique=$(cut -d' ' -f2 "$log" | sort -u | wc -l)
  [[ $lines == 2000 ]] || fail "$name: log has $lines lines, want 2000"
  [[ $ok == 2000 ]] || fail "$name: log has $ok well-formed 250 lines, want 2000"
  [[ $unique == 2000 ]] || fail "$name: log has $unique distinct Message-IDs, want 2000"
}

check_run lockstep
check_run pipelined --pipelining --source 127.0.0.2 --rcpts 3 --per-connection 7 --8bit

# kill -9 of the target mid-run: the --log file still has one complete line per finished message,
# and messages cut off are logged with 000.
"$inject" --target "127.0.0.1:$port" --count 10000000 --connections 10 --pipelining --quiet --json \
    --max-retries 1 --log "$work/killed.log" > "$work/killed.json" &
inject_pid=$!
for _ in $(seq 400); do
  [[ -s "$work/killed.log" && $(wc -l < "$work/killed.log") -ge 500 ]] && break
  sleep 0.02
done
kill -9 "$sink_pid"
wait "$sink_pid" 2>/dev/null || true
sink_pid=""
set +e
wait "$inject_pid"
rc=$?
set -e
cat "$work/killed.json"
[[ $rc == 1 ]] || fail "killed sink: exit code $rc, want 1"
attempted=$(sed -n 's/.*"attempted": \([0-9]*\),.*/\1/p' "$work/killed.json")
lines=$(wc -l < "$work/killed.log")
good=$(grep -c '^\(250\|000\) <ringmail-inject\.[0-9]*\.[0-9]*\.[0-9a-f]*@inject\.local> [^ ]*$' "$work/killed.log" || true)
[[ $lines -ge 500 && $lines == "$attempted" && $good == "$lines" ]] || \
  fail "killed sink: $lines log lines, $good well-formed, $attempted attempted"
[[ $(tail -c1 "$work/killed.log" | od -An -c | tr -d ' ') == '\n' ]] || fail "killed sink: last log line incomplete"

# A closed port: every message fails, the exit code says so, and the run ends (no spinning).
closed=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set +e
"$inject" --target "127.0.0.1:$closed" --count 10 --connections 2 --max-retries 2 --quiet --json > "$work/closed.json"
rc=$?
set -e
cat "$work/closed.json"
[[ $rc == 1 ]] || fail "closed port: exit code $rc, want 1"
grep -q '"accepted": 0,' "$work/closed.json" || fail "closed port: accepted should be 0"
grep -q '"connection_errors": 6,' "$work/closed.json" || fail "closed port: want 6 connection errors (2 slots x 3 tries)"
grep -q '"slots_given_up": 2,' "$work/closed.json" || fail "closed port: want both slots given up"
echo "inject_sink_test: ok"
