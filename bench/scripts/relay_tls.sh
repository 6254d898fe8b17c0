#!/usr/bin/env bash
# TLS relay benchmark (issue 7): ringmail-inject -> ringmail -> ringmail-sink, N messages of 5 KB over
# C inbound connections that each carry PER_CONN messages, run as pairs side by side: plain text on
# both hops, then STARTTLS on both hops (inject --starttls; ringmail --tls-cert/--tls-key and its
# connector tls = "required"; the sink --tls-cert/--tls-key; a throwaway self-signed certificate).
# Prints per run: end-to-end msgs/s (inject start -> the sink's count reaches N), the TLS/plain
# ratio of each pair, handshakes per second on both hops, the resumed share on each hop, and the CPU
# seconds each process used (all of them share the machine: in the TLS run the injector and the sink
# pay for the far ends of both hops' crypto on the same cores as ringmail).
#   bench/scripts/relay_tls.sh [MESSAGES] [CONNECTIONS] [PER_CONN] [PAIRS]   (defaults 20000 20 100 3)
# Loopback only; every process is started and stopped by its PID; docs/delivery.md records figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}
CONNS=${2:-20}
PER_CONN=${3:-100}
PAIRS=${4:-3}
SIZE=5120
BUILD=${RINGMAIL_BUILD:-build/release}
RINGMAIL=$BUILD/engine/ringmail
SINK=$BUILD/tools/sink/ringmail-sink
INJECT=$BUILD/tools/inject/ringmail-inject
if [ ! -x "$RINGMAIL" ] || [ ! -x "$SINK" ] || [ ! -x "$INJECT" ]; then
  ./scripts/build.sh release ringmail ringmail-sink ringmail-inject >/dev/null
  BUILD=build/release; RINGMAIL=$BUILD/engine/ringmail; SINK=$BUILD/tools/sink/ringmail-sink
  INJECT=$BUILD/tools/inject/ringmail-inject
fi
work=$(mktemp -d /var/tmp/ringmail-relay-tls.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
calc() { /usr/bin/python3 -c "print($1)"; }
forget() { local keep=(); for p in "${pids[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done; pids=("${keep[@]}"); }
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; forget "$1"; }
wait_file() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "no $1" >&2; return 1; }
stat_of() { grep -o "^$2=[0-9]*" "$1" | cut -d= -f2; }              # FILE KEY (key=value lines)
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }  # PID -> user+sys s
json_of() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=sink.bench \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
TLS_FILES=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
TIMEOUT=$((N / 20 + 120))  # seconds; a generous floor of 20 msg/s

# One relay run. MODE plain|tls, TAG -> sets SECS, IN_HS, IN_RES, OUT_HS, OUT_RES, RM_OUT_HS, and the CPU
# seconds CPU_RM, CPU_SINK, CPU_INJECT
relay_run() {
  local mode=$1 tag=$2 tls_args=() inject_tls=() policy=none
  [ "$mode" = tls ] && { tls_args=("${TLS_FILES[@]}"); inject_tls=(--starttls); policy=required; }
  # The sink prints its counters every 0.1 s (its main thread wakes every 100 ms), so the end of
  # the run is known within about 0.1 s.
  "$SINK" --listen 127.0.0.1:0 --ready-file "$work/$tag.sink.ready" --stats-file "$work/$tag.sink.stats" \
    --stats-interval 0.1 --quiet "${tls_args[@]}" >"$work/$tag.sink.out" 2>&1 &
  local sink_pid=$!; pids+=("$sink_pid")
  wait_file "$work/$tag.sink.ready"
  local sink_port; sink_port=$(head -1 "$work/$tag.sink.ready" | sed 's/.*://')
  cat >"$work/$tag.toml" <<EOF
[[connector]]
name = "Sink"
address_spaces = ["*"]
smart_hosts = ["[127.0.0.1]:$sink_port"]
tls = "$policy"
max_connections_per_destination = $CONNS
EOF
  "$RINGMAIL" --listen 127.0.0.1:0 --spool "$work/$tag.spool" --config "$work/$tag.toml" --hostname relay.bench \
    --ready-file "$work/$tag.rm.ready" --log-level info "${tls_args[@]}" >"$work/$tag.ringmail.log" 2>&1 &
  local rm_pid=$!; pids+=("$rm_pid")
  wait_file "$work/$tag.rm.ready" || { tail "$work/$tag.ringmail.log" >&2; exit 1; }
  local rm_port; rm_port=$(head -1 "$work/$tag.rm.ready" | sed 's/.*://')
  local t0 t1 deadline count
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$work/$tag.inject.time" \
    "$INJECT" --target "127.0.0.1:$rm_port" --count "$N" --connections "$CONNS" --per-connection "$PER_CONN" \
    --size $SIZE --pipelining --quiet --json --timeout 120 "${inject_tls[@]}" >"$work/$tag.inject.json"
  deadline=$(calc "$(now) + $TIMEOUT")
  while :; do
    count=$(tail -c 400 "$work/$tag.sink.out" | grep -o 'accepted=[0-9]*' | tail -1 | cut -d= -f2 || true)
    [ "${count:-0}" -ge "$N" ] && { t1=$(now); break; }
    if [ "$(calc "int($(now) > $deadline)")" = 1 ]; then echo "$tag: sink has ${count:-0} of $N" >&2; exit 1; fi
    sleep 0.02
  done
  SECS=$(calc "$t1 - $t0")
  CPU_RM=$(cpu_of "$rm_pid"); CPU_SINK=$(cpu_of "$sink_pid")
  CPU_INJECT=$(awk '{printf "%.2f", $1 + $2}' "$work/$tag.inject.time")
  stop_pid "$rm_pid"; stop_pid "$sink_pid"
  [ "$(json_of "$work/$tag.inject.json" accepted)" = "$N" ] || { echo "$tag: inject did not get $N accepted" >&2; exit 1; }
  IN_HS=$(json_of "$work/$tag.inject.json" tls_handshakes); IN_RES=$(json_of "$work/$tag.inject.json" tls_resumed)
  OUT_HS=$(stat_of "$work/$tag.sink.stats" tls_handshakes); OUT_RES=$(stat_of "$work/$tag.sink.stats" tls_resumed)
  # ringmail's own count of its outbound handshakes (the "delivery: ..." line at shutdown).
  RM_OUT_HS=$(grep -o '[0-9]* TLS handshakes, [0-9]* resumed' "$work/$tag.ringmail.log" | tail -1 || true)
  rm -rf "$work/$tag.spool"
}

echo "relay TLS benchmark: $N messages of $SIZE bytes, $CONNS inbound connections, $PER_CONN messages per" \
     "inbound connection, $PAIRS pairs; ringmail-inject -> ringmail -> ringmail-sink; work dir $work"
echo "machine: $(nproc) cores, $(uname -r); binaries from $BUILD"
fmt='%-5s %-6s %8s %8s %6s %10s %12s %12s %22s\n'
printf "$fmt" pair mode seconds msgs/s ratio hs/s hop1-resumed hop2-resumed "cpu s ringmail/sink/inj"
all_plain=0; all_tls=0; ratios=(); cpu_plain=0; cpu_tls=0
for pair in $(seq "$PAIRS"); do
  relay_run plain "p$pair"
  plain_secs=$SECS
  all_plain=$(calc "$all_plain + $SECS"); cpu_plain=$(calc "$cpu_plain + $CPU_RM")
  printf "$fmt" "$pair" plain "$(printf %.2f "$SECS")" "$(calc "round($N / $SECS)")" - - - - \
    "$CPU_RM/$CPU_SINK/$CPU_INJECT"
  relay_run tls "t$pair"
  hs=$((IN_HS + OUT_HS))
  printf "$fmt" "$pair" tls "$(printf %.2f "$SECS")" "$(calc "round($N / $SECS)")" \
    "$(calc "f'{$plain_secs / $SECS:.3f}'")" "$(calc "f'{$hs / $SECS:.1f}'")" "$IN_RES/$IN_HS" "$OUT_RES/$OUT_HS" \
    "$CPU_RM/$CPU_SINK/$CPU_INJECT"
  echo "      (ringmail's own count, hop2: ${RM_OUT_HS:-none})"
  all_tls=$(calc "$all_tls + $SECS"); cpu_tls=$(calc "$cpu_tls + $CPU_RM")
  ratios+=("$(calc "$plain_secs / $SECS")")
done
# The machine is shared and single runs are noisy: the pooled figure (all plain runs against all TLS
# runs) and the median of the pairs' ratios say more than any one pair.
echo "all pairs: plain $(calc "round($PAIRS * $N / $all_plain)") msgs/s, TLS $(calc "round($PAIRS * $N / $all_tls)") msgs/s," \
     "pooled ratio $(calc "f'{$all_plain / $all_tls:.3f}'"), median pair ratio" \
     "$(/usr/bin/python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "${ratios[@]}")"
# ringmail's own CPU per relayed message, which the rig's share of the cores does not affect.
echo "ringmail CPU per message: plain $(calc "round($cpu_plain * 1e6 / ($PAIRS * $N), 1)") us," \
     "TLS $(calc "round($cpu_tls * 1e6 / ($PAIRS * $N), 1)") us ($(calc "f'{($cpu_tls / $cpu_plain - 1) * 100:+.0f}'") %)"
echo "ratio = TLS msgs/s / plain msgs/s of the same pair (target >= 0.70); hs/s = handshakes on both hops /"
echo "run seconds; hop1 = inject -> ringmail (counted by the injector), hop2 = ringmail -> sink (counted by the"
echo "sink); cpu s = user+system seconds of each process during the run"
