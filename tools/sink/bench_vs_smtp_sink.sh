#!/usr/bin/env bash
# bench_vs_smtp_sink.sh: messages/s of Postfix's smtp-source into ringmail-sink and into Postfix's
# smtp-sink, side by side in one run (same message count, size and concurrency; alternating runs).
# usage: bench_vs_smtp_sink.sh /path/to/ringmail-sink [messages=100000] [size=5000] [sessions=20] [rounds=2]
# Kills only the sinks it started. Prints one line per run and a final table.
set -euo pipefail
ringmail_sink=$1
messages=${2:-100000}
size=${3:-5000}
sessions=${4:-20}
rounds=${5:-2}
smtp_sink=/usr/sbin/smtp-sink
smtp_source=/usr/sbin/smtp-source
work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # bounded: 200 probes
  for _ in $(seq 200); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),timeout=1).close()" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1"; exit 1
}
# Runs smtp-source against 127.0.0.1:$1 and prints messages/s.
drive() {
  local t0 t1
  t0=$(date +%s.%N)
  "$smtp_source" -s "$sessions" -m "$messages" -l "$size" "127.0.0.1:$1" > /dev/null
  t1=$(date +%s.%N)
  /usr/bin/python3 -c "print(f'{$messages/($t1-$t0):.0f} msg/s in {$t1-$t0:.2f} s')"
}

results=()
for round in $(seq "$rounds"); do
  # ringmail-sink, one worker (the default).
  "$ringmail_sink" --listen 127.0.0.1:0 --ready-file "$work/ready" --stats-file "$work/stats" --quiet > "$work/out" &
  pid=$!
  for _ in $(seq 200); do [[ -s "$work/ready" ]] && break; sleep 0.05; done
  port=$(head -1 "$work/ready" | sed 's/.*://')
  r=$(drive "$port")
  kill "$pid"; wait "$pid" || true; pid=""
  rm -f "$work/ready"
  accepted=$(grep '^messages_accepted=' "$work/stats" | cut -d= -f2)
  echo "round $round ringmail-sink: $r (accepted $accepted)"
  results+=("ringmail-sink $r")

  # Postfix smtp-sink with a backlog of 256, as in its manual's benchmark examples.
  port=$(free_port)
  user_args=()
  if [[ $(id -u) == 0 ]]; then user_args=(-u nobody); fi
  "$smtp_sink" "${user_args[@]}" -c "127.0.0.1:$port" 256 > "$work/smtp-sink.out" &
  pid=$!
  wait_port "$port"
  r=$(drive "$port")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "round $round smtp-sink:     $r"
  results+=("smtp-sink     $r")
done
echo "--- $messages messages of $size bytes, $sessions smtp-source sessions, $(nproc) CPUs"
printf '%s\n' "${results[@]}"
