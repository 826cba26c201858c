#!/usr/bin/env bash
# Streaming soak of `bora serve` (reliability-security.md §4.2), Node's built-in http only.
#
#   tests/e2e/soak/run_soak.sh BORA_BINARY SHARED_DIR [SECONDS]
#
# Writes a tiny random-weight model (SentencePiece v3 tokenizer, FIM-capable) with `bora make-model`,
# starts `bora serve` on 127.0.0.1 with a small context and a KV pool smaller than its slots need
# (so sequences queue and get preempted), runs soak.mjs for SECONDS (default 120) with 16
# concurrent clients, then checks that the server is still alive and stops it with SIGTERM.
# soak.mjs prints the `soak:` summary line; the script exits non-zero when any check failed.
#
# Environment (all optional):
#   SOAK_ARGS        extra arguments for soak.mjs, e.g. "--clients 8 --verbose"
#   BORA_SERVE_ARGS  extra arguments for `bora serve`, e.g. "-t 2"
#   START_TIMEOUT    seconds to wait for the server's "listening on" line (default 60)
#   KEEP_WORK=1      keep the temporary folder (model and server log)

set -uo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 BORA_BINARY SHARED_DIR [SECONDS]" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BORA=$(realpath "$1")
SHARED=$(realpath "$2")
SECONDS_TO_RUN=${3:-120}
START_TIMEOUT=${START_TIMEOUT:-60}
read -r -a EXTRA_SOAK <<<"${SOAK_ARGS:-}"
read -r -a EXTRA_SERVE <<<"${BORA_SERVE_ARGS:-}"

# The server's shape: 512-token contexts, 8 slots, and a KV pool of 48 blocks of 16 tokens
# (768 tokens, a bit more than one full context) where 8 full sequences would need 256 blocks.
CTX=512
PARALLEL=8
KV_BLOCKS=48
MAX_QUEUE=32

[[ -x $BORA ]] || { echo "error: $BORA is not an executable" >&2; exit 2; }
[[ $SECONDS_TO_RUN =~ ^[0-9]+$ && $SECONDS_TO_RUN -gt 0 ]] || {
  echo "error: SECONDS must be a positive integer, got $SECONDS_TO_RUN" >&2
  exit 2
}
command -v node >/dev/null || { echo "error: node is not installed (Node.js 20 or newer)" >&2; exit 2; }
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
if ((NODE_MAJOR < 20)); then
  echo "error: node $(node --version) is too old (need 20 or newer)" >&2
  exit 2
fi
TOKENIZER=$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3
[[ -f $TOKENIZER ]] || { echo "error: tokenizer $TOKENIZER not found" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bora-soak.XXXXXX")
SERVER_PID=""

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local status=0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "# bora serve did not stop within 30 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null
  status=$?
  SERVER_PID=""
  return $status
}
cleanup() {
  stop_server
  if [[ ${KEEP_WORK:-0} == 1 ]]; then
    echo "# kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

model_dir=$WORK/model
if ! "$BORA" make-model --preset tiny --seed 7 --tokenizer "$TOKENIZER" --out "$model_dir" \
  >"$WORK/make-model.log" 2>&1; then
  cat "$WORK/make-model.log"
  echo "soak: FAILED - bora make-model failed"
  exit 1
fi

log=$WORK/serve.log
"$BORA" serve --model "tiny=$model_dir" --host 127.0.0.1 --port 0 --ctx "$CTX" \
  --parallel "$PARALLEL" --max-queue "$MAX_QUEUE" --kv-blocks "$KV_BLOCKS" --state-dir none \
  "${EXTRA_SERVE[@]}" >"$log" 2>&1 &
SERVER_PID=$!

port=""
deadline=$((SECONDS + START_TIMEOUT))
while ((SECONDS < deadline)); do
  port=$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]\+' "$log" | grep -o '[0-9]\+$')
  [[ -n $port ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "# server log (last 30 lines):"
  tail -n 30 "$log" | sed 's/^/#   /'
  echo "soak: FAILED - bora serve did not start"
  exit 1
fi
echo "# bora serve (pid $SERVER_PID) on 127.0.0.1:$port: --ctx $CTX --parallel $PARALLEL" \
  "--kv-blocks $KV_BLOCKS --max-queue $MAX_QUEUE; soak for ${SECONDS_TO_RUN} s"

node "$HERE/soak.mjs" --base-url "http://127.0.0.1:$port" --pid "$SERVER_PID" \
  --seconds "$SECONDS_TO_RUN" --ctx "$CTX" --model tiny "${EXTRA_SOAK[@]}"
rc=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "# bora serve died during the run"
  rc=1
fi
if ! stop_server; then
  echo "# bora serve did not exit cleanly on SIGTERM"
  rc=1
fi
if ((rc != 0)); then
  echo "# server log (last 30 lines):"
  tail -n 30 "$log" | sed 's/^/#   /'
fi
exit $rc
