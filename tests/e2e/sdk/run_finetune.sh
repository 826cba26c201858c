#!/usr/bin/env bash
# End-to-end test of the fine-tuning API of `bora serve` (files + jobs) with the official Mistral
# Node SDK 1.15.1 (`mistralai-v1`), the OpenAI SDK and raw HTTP, including a kill -9 of the server
# while a job is RUNNING and restarts on the same --state-dir (see finetune_jobs.mjs).
#
#   tests/e2e/sdk/run_finetune.sh BORA_BINARY SHARED_DIR
#
# Writes a tiny random-weight model (SentencePiece v3 tokenizer from SHARED_DIR) with
# `bora make-model` and three datasets with `bora make-dataset` (400 instruct records for
# training, 50 for validation, 20 pretrain records), then runs finetune_jobs.mjs, which starts,
# kills and restarts `bora serve --state-dir` itself. Installs the pinned SDKs with `npm ci` when
# node_modules is missing or older than package-lock.json. Ends with one line
# `N passed, M failed`; exits 1 if any check failed. Every server it started is killed on exit.
#
# Environment (all optional):
#   FINETUNE_ARGS      extra arguments for finetune_jobs.mjs, e.g. "--verbose --train-timeout 300"
#   BORA_SERVE_ARGS    extra arguments for `bora serve`, e.g. "--ctx 2048"
#   THREADS            -t for `bora serve` (default 2)
#   START_TIMEOUT      seconds to wait for the server's "listening on" line (default 60)
#   KEEP_WORK=1        keep the temporary folder (model, data, state dir, server logs)

set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BORA_BINARY SHARED_DIR" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BORA=$(realpath "$1")
SHARED=$(realpath "$2")
START_TIMEOUT=${START_TIMEOUT:-60}
THREADS=${THREADS:-2}
API_KEY=test-key
TOKENIZER=$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3
read -r -a EXTRA_ARGS <<<"${FINETUNE_ARGS:-}"

[[ -x $BORA ]] || { echo "error: $BORA is not an executable" >&2; exit 2; }
command -v node >/dev/null || { echo "error: node is not installed (Node.js 20 or newer)" >&2; exit 2; }
command -v npm >/dev/null || { echo "error: npm is not installed" >&2; exit 2; }
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
if ((NODE_MAJOR < 20)); then
  echo "error: node $(node --version) is too old (need 20 or newer)" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bora-finetune.XXXXXX")
PID_FILE=$WORK/servers.pid
NODE_PID=""

# Kills every server finetune_jobs.mjs started (it appends each pid to servers.pid) that is
# still a bora process, then the node process itself if it is still there.
kill_servers() {
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$NODE_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$NODE_PID" 2>/dev/null && kill -KILL "$NODE_PID" 2>/dev/null
  fi
  [[ -f $PID_FILE ]] || return 0
  local pid
  while read -r pid; do
    [[ $pid =~ ^[0-9]+$ ]] || continue
    kill -0 "$pid" 2>/dev/null || continue
    # Only our own server (the pid may have been reused since it exited).
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--state-dir $WORK/state"; then
      echo "# killing leftover bora serve (pid $pid)" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done <"$PID_FILE"
}
cleanup() {
  kill_servers
  if [[ ${KEEP_WORK:-0} == 1 ]]; then
    echo "# kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The pinned SDKs (package-lock.json); npm ci wipes and reinstalls node_modules.
if [[ ! -f $HERE/node_modules/.package-lock.json || $HERE/package-lock.json -nt $HERE/node_modules/.package-lock.json ||
      ! -d $HERE/node_modules/mistralai-v1 ]]; then
  echo "# npm ci in $HERE" >&2
  if ! (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
    cat "$WORK/npm.log" >&2
    echo "error: npm ci failed" >&2
    exit 1
  fi
fi

fail_setup() {
  echo "FAIL - setup: $1"
  echo "0 passed, 1 failed"
  exit 1
}

[[ -f $TOKENIZER ]] || fail_setup "tokenizer $TOKENIZER not found"
if ! "$BORA" make-model --preset tiny --seed 1 --tokenizer "$TOKENIZER" --out "$WORK/model" >"$WORK/make-model.log" 2>&1; then
  cat "$WORK/make-model.log"
  fail_setup "bora make-model failed"
fi
mkdir -p "$WORK/data"
for spec in "train.jsonl 400 1 instruct" "eval.jsonl 50 2 instruct" "pretrain.jsonl 20 3 pretrain"; do
  read -r file count seed kind <<<"$spec"
  if ! "$BORA" make-dataset --out "$WORK/data/$file" --count "$count" --seed "$seed" --kind "$kind" >>"$WORK/make-dataset.log" 2>&1; then
    cat "$WORK/make-dataset.log"
    fail_setup "bora make-dataset $file failed"
  fi
done
mkdir -p "$WORK/state"

out=$WORK/finetune.log
# finetune_jobs.mjs' own summary line becomes a comment; this script prints the final one.
node "$HERE/finetune_jobs.mjs" --bora "$BORA" --model-dir "$WORK/model" --state-dir "$WORK/state" \
  --train "$WORK/data/train.jsonl" --eval "$WORK/data/eval.jsonl" --pretrain "$WORK/data/pretrain.jsonl" \
  --work "$WORK" --model-name tiny --api-key "$API_KEY" --threads "$THREADS" \
  --serve-args "${BORA_SERVE_ARGS:-}" --start-timeout "$START_TIMEOUT" "${EXTRA_ARGS[@]}" \
  > >(tee "$out" | sed -u -E 's/^([0-9]+ passed, [0-9]+ failed)$/# finetune_jobs.mjs: \1/') 2>&1 &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=""
# Let tee finish writing the log before reading it.
for _ in $(seq 1 30); do
  grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out" 2>/dev/null && break
  sleep 0.1
done
sleep 0.2

summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
if ((rc != 0)); then
  for log in "$WORK"/serve.*.log; do
    [[ -f $log ]] || continue
    echo "# $(basename "$log") (last 20 lines):"
    tail -n 20 "$log" | sed 's/^/#   /'
  done
fi
kill_servers

if [[ -z $summary ]]; then
  echo "FAIL - finetune_jobs.mjs ended without a summary line (exit $rc)"
  echo "0 passed, 1 failed"
  exit 1
fi
p=${summary%% passed*}
f=${summary#*passed, }; f=${f%% failed}
if ((rc != 0 && f == 0)); then
  echo "FAIL - finetune_jobs.mjs exited with status $rc"
  f=$((f + 1))
fi
echo "${p} passed, ${f} failed"
((f == 0))
