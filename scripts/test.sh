#!/usr/bin/env bash
# Sets up and runs every test tier: release build (unit, numerical, e2e), then the same suites
# under clang ASan+UBSan, and the engine/thread-pool tests under TSan. Usage: scripts/test.sh [--fast]  (--fast: release build only)
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[ "${1:-}" = "--fast" ] && fast=1
jobs=$(nproc)

stage() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }
timed() { local start=$SECONDS; "$@"; printf '   took %ds\n' $((SECONDS - start)); }

stage "dependencies"
timed scripts/install-deps.sh

stage "release build"
timed cmake --preset release >/dev/null
timed cmake --build --preset release -j "$jobs"
stage "release tests"
timed ctest --preset release -j "$jobs" -L 'unit|numerical|e2e'

if [ "$fast" -eq 0 ]; then
  stage "asan-ubsan build"
  timed cmake --preset asan-ubsan >/dev/null
  timed cmake --build --preset asan-ubsan -j "$jobs"
  stage "asan-ubsan tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timed ctest --preset asan-ubsan -j "$jobs" -L 'unit|numerical|e2e'

  # ThreadSanitizer on the multi-threaded parts only (engine, scheduler, thread pool).
  stage "tsan build (engine, thread pool)"
  timed cmake --preset tsan >/dev/null
  timed cmake --build --preset tsan -j "$jobs" --target engine_test base_test
  stage "tsan tests"
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    timed ctest --preset tsan -j "$jobs" -R 'EngineTest|ThreadPool'
fi
stage "all tests passed"
