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
# The README's first command: the real model's story, a fine-tune and two API calls.
stage "demo (scripts/demo.sh)"
timed bash -c 'scripts/demo.sh > build/demo.log 2>&1 || { tail -n 40 build/demo.log; exit 1; }'

# The official SDKs (npm, pinned by package-lock.json) and headless Chromium against the real
# server, release build only.
shared_dir="${BORA_SHARED:-$(cd .. && pwd)/shared}"
if [ -d "$shared_dir/tokenizers" ]; then
  stage "sdk conformance (@mistralai/mistralai, openai)"
  timed tests/e2e/sdk/run_conformance.sh build/release/apps/bora "$shared_dir"
  stage "mpi: tensor-parallel groups (mpirun, one thread per rank) and the SDK suite against 2 ranks"
  timed ctest --preset release -L mpi --no-tests=error
  timed env OMPI_MCA_btl_vader_single_copy_mechanism=none \
    BORA_LAUNCHER="mpirun --allow-run-as-root --oversubscribe -np 2" BORA_SERVE_ARGS="-t 1" \
    tests/e2e/sdk/run_conformance.sh build/release/apps/bora "$shared_dir"
  stage "fine-tuning API: files, jobs, kill -9 and resume (mistralai 1.15.1, openai)"
  timed tests/e2e/sdk/run_finetune.sh build/release/apps/bora "$shared_dir"
  stage "web chat page (headless chromium)"
  timed tests/e2e/web/run_web_test.sh build/release/apps/bora "$shared_dir"
  stage "streaming soak"
  soak_seconds=120
  [ "${LONG_TESTS:-0}" = "1" ] && soak_seconds=600
  timed tests/e2e/soak/run_soak.sh build/release/apps/bora "$shared_dir" "$soak_seconds"
elif [ "${CI:-}" = "true" ]; then
  echo "shared data folder not found at $shared_dir (CI=true makes this an error)"; exit 1
else
  echo "skipping the SDK and browser suites: no shared data folder at $shared_dir"
fi

if [ "$fast" -eq 0 ]; then
  stage "asan-ubsan build"
  timed cmake --preset asan-ubsan >/dev/null
  timed cmake --build --preset asan-ubsan -j "$jobs"
  stage "asan-ubsan tests"
  # The constrained-generation acceptance test samples 2 × 1000 sequences through a model: its
  # code paths run under the sanitizers in the constraint unit tests, at a fraction of the time.
  # Likewise the 100-step fine-tuning runs (TuneTest): the trainer's forward and backward run
  # under the sanitizers in the gradient checks (train_test).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timed ctest --preset asan-ubsan -j "$jobs" -L 'unit|numerical|e2e' -E 'ConstrainedGeneration|TuneTest'

  # Tier-1 fuzzing with the same build: each target from its committed corpus for a bounded
  # time (LONG_TESTS=1: 5 minutes each). New inputs go to a scratch directory; a crash leaves
  # its input in the working directory (crash-*) and fails the run: add it to the corpus.
  stage "fuzz"
  fuzz_seconds=20
  [ "${LONG_TESTS:-0}" = "1" ] && fuzz_seconds=300
  for target in build/asan-ubsan/fuzz/fuzz_*; do
    [ -f "$target" ] && [ -x "$target" ] || continue
    name=$(basename "$target"); name=${name#fuzz_}
    scratch=$(mktemp -d)
    set +e
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -max_len=4096 \
      "$scratch" "fuzz/corpus/$name" > "$scratch.log" 2>&1
    status=$?
    set -e
    printf '   %s: %s\n' "$name" "$(grep -E '^Done' "$scratch.log" || echo 'no summary')"
    if [ "$status" -ne 0 ]; then
      grep -E 'ERROR|SUMMARY|Test unit written' "$scratch.log" || tail -n 20 "$scratch.log"
      echo "fuzz target $name failed"
      exit 1
    fi
    rm -rf "$scratch" "$scratch.log"
  done

  # ThreadSanitizer on the multi-threaded parts only (engine, scheduler, thread pool, the HTTP
  # connection loop and its workers).
  stage "tsan build (engine, thread pool, http)"
  timed cmake --preset tsan >/dev/null
  timed cmake --build --preset tsan -j "$jobs" --target engine_test base_test http_listener_test
  stage "tsan tests"
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    timed ctest --preset tsan -j "$jobs" -R 'EngineTest|ThreadPool|HttpListener'
fi
stage "all tests passed"
