#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, then builds and tests
#   1. the plain build: unit tests and integration tests against real peers;
#   2. an ASan+UBSan build: the same suite;
#   3. a TSan build: the concurrency tests (label "tsan").
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
start=$(date +%s)

echo "== release build"
./scripts/build.sh release
ctest --test-dir build/release --output-on-failure -j "$jobs"

echo "== asan+ubsan build"
./scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs"

echo "== tsan build (only the programs of tests labelled tsan)"
./scripts/build.sh tsan help >/dev/null  # configure
tsan_targets=$(ctest --test-dir build/tsan -L tsan -N | sed -n 's/^ *Test *#[0-9]*: *//p')
./scripts/build.sh tsan $tsan_targets
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build/tsan --output-on-failure -j "$jobs" -L tsan

echo "== all test runs passed in $(( $(date +%s) - start )) s"
