#!/usr/bin/env bash
# Configures and builds one flavour of ringmail into build/<flavour>:
#   scripts/build.sh            plain RelWithDebInfo build (daemon, tools, tests, benchmarks)
#   scripts/build.sh asan       AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh tsan       ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) args=(-DRINGMAIL_SANITIZE= -DRINGMAIL_BENCH=ON) ;;
  asan)    args=(-DRINGMAIL_SANITIZE=address -DRINGMAIL_BENCH=OFF) ;;
  tsan)    args=(-DRINGMAIL_SANITIZE=thread -DRINGMAIL_BENCH=OFF) ;;
  *) echo "usage: $0 [release|asan|tsan]" >&2; exit 2 ;;
esac
shift || true
# ccache keyed on paths relative to the checkout, so a fresh clone elsewhere (CI) reuses the cache.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
cmake -S . -B "build/$flavour" -G Ninja "${args[@]}" >/dev/null
ninja -C "build/$flavour" "$@"
