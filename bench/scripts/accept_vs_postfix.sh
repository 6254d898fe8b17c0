#!/usr/bin/env bash
# Accept-rate benchmark: ringmail vs Postfix, side by side in one run on the same machine.
# Both receive the same load from Postfix's smtp-source into a durable queue, with delivery held:
# 5 KB messages, 20 connections kept open (smtp-source -d), N messages (default 100000). Both queues live on the same
# filesystem. Prints messages/s for each and the ratio, and checks that every message is queued.
#   bench/scripts/accept_vs_postfix.sh [MESSAGES] [ROUNDS]
# ROUNDS (default 1) repeats the whole sequence (Postfix, ringmail, the compare build) and ends with
# the median of each system's rate and ratio: single runs on a shared 2-core VM vary by ±15 %.
# RINGMAIL_BUILD picks the build (default build/release). RINGMAIL_COMPARE=<other build dir> also runs
# that build's ringmail right after, in the same run, for A/B comparisons of spool changes.
# RINGMAIL_ARGS / RINGMAIL_COMPARE_ARGS add daemon flags to either run, e.g. the same build twice:
#   RINGMAIL_COMPARE=build/release RINGMAIL_COMPARE_ARGS="--workers 1" bench/scripts/accept_vs_postfix.sh
# SOURCE_CPUS=<cpu list> runs smtp-source under `taskset -c` for every system alike (e.g. 0, so that a
# server pinned with --worker-cpus 1 does not share its core with the load generator). For
# experiments only: it slowed Postfix by about 10 % on the 2-core VM, so the README's figures are
# taken without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
ROUNDS=${2:-1}
SIZE=5120
CONNS=20
BUILD=${RINGMAIL_BUILD:-build/release}
COMPARE=${RINGMAIL_COMPARE:-}
read -r -a ARGS_a <<< "${RINGMAIL_ARGS:-}"
read -r -a ARGS_b <<< "${RINGMAIL_COMPARE_ARGS:-}"
SOURCE=(smtp-source)
[ -n "${SOURCE_CPUS:-}" ] && SOURCE=(taskset -c "$SOURCE_CPUS" smtp-source)
[ -x "$BUILD/engine/ringmail" ] || ./scripts/build.sh release >/dev/null
work=$(mktemp -d /var/tmp/ringmail-bench.XXXXXX)
chmod 755 "$work"  # Postfix daemons (user postfix) must reach its queue below
rm_pid=""
cleanup() {
  [ -n "$rm_pid" ] && kill "$rm_pid" 2>/dev/null && wait "$rm_pid" 2>/dev/null || true
  ./scripts/postfix-instance.sh stop "$work/postfix" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate() { /usr/bin/python3 -c "print(f'{$1/$2:.0f}')"; }

echo "accept benchmark: $N messages of $SIZE bytes over $CONNS connections (smtp-source), queues in $work"
echo "machine: $(nproc) cores, $(uname -r)${SOURCE_CPUS:+; smtp-source on CPU $SOURCE_CPUS}"

settle() { sync; sleep 3; }  # let earlier writeback finish so neither run pays for the other's

# --- Postfix, every message to the hold queue (cleanup fsyncs each queue file)
run_postfix() {  # sets pf_secs, pf_count
settle
pf_port=$(free_port)
./scripts/postfix-instance.sh create "$work/postfix" "$pf_port" hold >/dev/null
./scripts/postfix-instance.sh start "$work/postfix" >/dev/null
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$pf_port) 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s.%N)
"${SOURCE[@]}" -d -s $CONNS -l $SIZE -m "$N" -f sender@example.org -t rcpt@example.com "127.0.0.1:$pf_port"
t1=$(date +%s.%N)
pf_secs=$(/usr/bin/python3 -c "print($t1 - $t0)")
sleep 1
pf_count=$(./scripts/postfix-instance.sh count "$work/postfix")
./scripts/postfix-instance.sh stop "$work/postfix" >/dev/null 2>&1
rm -rf "$work/postfix"  # Postfix's 100k queue files are counted; drop them before ringmail runs
}

# --- ringmail, --hold (group commit: 250 only after the fdatasync covering the message)
# run_ringmail BUILD TAG: sets secs_TAG, count_TAG; keeps the daemon's log in $work/ringmail-TAG.log.
run_ringmail() {
  local build=$1 tag=$2 port t0 t1
  local -n extra="ARGS_$tag"
  settle
  port=$(free_port)
  rm -f "$work/ready-$tag"  # from an earlier round
  "$build/engine/ringmail" --listen "127.0.0.1:$port" --spool "$work/spool-$tag" --hold \
    --hostname bench.local --ready-file "$work/ready-$tag" ${extra[@]+"${extra[@]}"} 2> "$work/ringmail-$tag.log" &
  rm_pid=$!
  for _ in $(seq 100); do [ -f "$work/ready-$tag" ] && break; sleep 0.05; done
  t0=$(date +%s.%N)
  "${SOURCE[@]}" -d -s $CONNS -l $SIZE -m "$N" -f sender@example.org -t rcpt@example.com "127.0.0.1:$port"
  t1=$(date +%s.%N)
  printf -v "secs_$tag" '%s' "$(/usr/bin/python3 -c "print($t1 - $t0)")"
  kill -TERM "$rm_pid"; wait "$rm_pid"; rm_pid=""
  printf -v "count_$tag" '%s' "$("$build/tools/spool/ringmail-spool" --spool "$work/spool-$tag" list --json |
           /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  rm -rf "$work/spool-$tag"
}
rates_pf=(); rates_a=(); rates_b=()
for round in $(seq "$ROUNDS"); do
[ "$ROUNDS" -gt 1 ] && echo "--- round $round of $ROUNDS"
run_postfix
run_ringmail "$BUILD" a
[ -n "$COMPARE" ] && run_ringmail "$COMPARE" b

pf_rate=$(rate "$N" "$pf_secs"); rm_rate=$(rate "$N" "$secs_a")
rates_pf+=("$pf_rate"); rates_a+=("$rm_rate")
printf '%-10s %9s %10s %12s\n' system seconds "msgs/s" queued
printf '%-10s %9.2f %10s %12s\n' postfix "$pf_secs" "$pf_rate" "$pf_count"
printf '%-10s %9.2f %10s %12s   %s\n' ringmail "$secs_a" "$rm_rate" "$count_a" "${RINGMAIL_ARGS:-}"
grep -h "spool writer.*messages in" "$work/ringmail-a.log" | sed 's/^.*info: /ringmail /'
echo "ratio ringmail/postfix: $(/usr/bin/python3 -c "print(f'{$rm_rate/$pf_rate:.1f}x')")"
if [ -n "$COMPARE" ]; then
  cmp_rate=$(rate "$N" "$secs_b"); rates_b+=("$cmp_rate")
  printf '%-10s %9.2f %10s %12s   (%s) %s\n' compare "$secs_b" "$cmp_rate" "$count_b" "$COMPARE" "${RINGMAIL_COMPARE_ARGS:-}"
  grep -h "spool writer.*messages in" "$work/ringmail-b.log" | sed 's/^.*info: /compare  /'
  echo "ratio compare/postfix: $(/usr/bin/python3 -c "print(f'{$cmp_rate/$pf_rate:.1f}x')")"
  [ "$count_b" -eq "$N" ] || { echo "compare build queued $count_b of $N" >&2; exit 1; }
fi
[ "$count_a" -eq "$N" ] || { echo "ringmail queued $count_a of $N" >&2; exit 1; }
[ "$pf_count" -eq "$N" ] || echo "note: postfix queued $pf_count of $N" >&2
done

if [ "$ROUNDS" -gt 1 ]; then
  median() { /usr/bin/python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" "$@"; }
  ratios() { /usr/bin/python3 -c "import sys; n=len(sys.argv)//2; a=sys.argv[1:n+1]; p=sys.argv[n+1:]; print(' '.join(f'{float(x)/float(y):.1f}x' for x,y in zip(a,p)))" "$@"; }
  mratio() { /usr/bin/python3 -c "import statistics,sys; n=len(sys.argv)//2; a=sys.argv[1:n+1]; p=sys.argv[n+1:]; print(f'{statistics.median(float(x)/float(y) for x,y in zip(a,p)):.1f}x')" "$@"; }
  echo "--- $ROUNDS rounds: msgs/s per round, median; ratio to the same round's Postfix"
  echo "postfix   ${rates_pf[*]}   median $(median "${rates_pf[@]}")"
  echo "ringmail  ${rates_a[*]}   median $(median "${rates_a[@]}")   ratios $(ratios "${rates_a[@]}" "${rates_pf[@]}"), median $(mratio "${rates_a[@]}" "${rates_pf[@]}")   ${RINGMAIL_ARGS:-}"
  if [ -n "$COMPARE" ]; then
    echo "compare   ${rates_b[*]}   median $(median "${rates_b[@]}")   ratios $(ratios "${rates_b[@]}" "${rates_pf[@]}"), median $(mratio "${rates_b[@]}" "${rates_pf[@]}")   ${RINGMAIL_COMPARE_ARGS:-}"
  fi
fi
