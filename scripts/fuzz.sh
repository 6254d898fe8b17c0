#!/usr/bin/env bash
# Runs libFuzzer campaigns on ringmail's fuzz targets (tests/fuzz/), built with clang, ASan and UBSan
# into build/fuzz.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 60 seconds for each of every target
# New inputs go to build/fuzz/corpus/<target>/; the inputs that reach new code are then merged into
# the committed corpus tests/fuzz/corpus/<target>/ (review and commit them: every CI run replays
# them). A failure stops the script and names the reproducer (build/fuzz/crash-*); replay it with
#   build/fuzz/tests/fuzz/<target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(data_decoder_fuzz server_session_fuzz command_parser_fuzz reply_parser_fuzz client_session_fuzz spool_records_fuzz
     connector_config_fuzz dns_answer_fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
if ! dpkg -s clang libclang-rt-14-dev >/dev/null 2>&1; then  # clang and its libFuzzer runtime
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DRINGMAIL_FUZZ=ON -DRINGMAIL_BENCH=OFF >/dev/null
ninja -C build/fuzz "${targets[@]}" >/dev/null
for t in "${targets[@]}"; do
  mkdir -p "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t"
  log="build/fuzz/$t.log"
  if ! (cd build/fuzz && "tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "corpus/$t" "../../tests/fuzz/corpus/$t") > "$log" 2>&1; then
    grep -E "FUZZ_CHECK|ERROR|SUMMARY|#[0-9]+ in |Test unit written" "$log" | head -30
    echo "$t: FAILED (full output: $log)" >&2
    exit 1
  fi
  runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | grep -oE "[0-9]+$")
  cov=$(grep -E "DONE|pulse|NEW" "$log" | tail -1 | grep -oE "cov: [0-9]+ ft: [0-9]+")
  merged=$("build/fuzz/tests/fuzz/$t" -merge=1 "tests/fuzz/corpus/$t" "build/fuzz/corpus/$t" 2>&1 |
           grep -oE "MERGE-OUTER: [0-9]+ new files" || echo "merge: nothing new")
  echo "$t: ${secs}s, $runs runs, $cov; $merged"
done
