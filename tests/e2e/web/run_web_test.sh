#!/usr/bin/env bash
# Runs the web chat page test (chat_page.mjs, headless Chromium) against a real `bora serve` on a
# tiny random-weight model. Usage: run_web_test.sh BORA_BINARY SHARED_DIR
# Environment: API_KEY=K also starts the server with --api-key K and tests the page's key field;
# CHROMIUM_PATH overrides /usr/bin/chromium; KEEP_TMP=1 keeps the model folder and server log.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BORA_BINARY SHARED_DIR" >&2
  exit 2
fi
BORA=$(realpath "$1")
SHARED=$(realpath "$2")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOKENIZER="$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3"
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

for need in "$BORA" "$TOKENIZER" "$CHROMIUM"; do
  [[ -x "$need" || -f "$need" ]] || { echo "run_web_test.sh: missing $need" >&2; exit 2; }
done
command -v node >/dev/null || { echo "run_web_test.sh: node is not installed" >&2; exit 2; }

TMP=$(mktemp -d -t bora-web-XXXXXX)
SERVER_PID=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "run_web_test.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BORA" make-model --preset tiny --seed 1 --tokenizer "$TOKENIZER" --out "$TMP/tiny" >"$TMP/make-model.log" 2>&1 || {
  cat "$TMP/make-model.log" >&2; echo "run_web_test.sh: make-model failed" >&2; exit 1; }

# A vision model beside it: the page offers image attachments for it only.
PIXTRAL="$SHARED/reference-models/tiny-pixtral"
SERVE_ARGS=(serve --model "tiny=$TMP/tiny" --host 127.0.0.1 --port 0 --ctx 2048 --state-dir none)
TEST_ARGS=()
if [[ -d "$PIXTRAL/mistral" ]]; then
  SERVE_ARGS+=(--model "pixtral=$PIXTRAL/mistral")
  TEST_ARGS+=(--vision-model pixtral --image "$PIXTRAL/images/photo_64x48.jpg")
fi
if [[ -n "${API_KEY:-}" ]]; then
  SERVE_ARGS+=(--api-key "$API_KEY")
  TEST_ARGS+=(--api-key "$API_KEY")
fi
"$BORA" "${SERVE_ARGS[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!

PORT=""
for _ in $(seq 600); do   # up to 60 s
  PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/server.err" | head -n 1)
  [[ -n "$PORT" ]] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$TMP/server.err" >&2; echo "run_web_test.sh: bora serve exited before listening" >&2; exit 1
  fi
  sleep 0.1
done
if [[ -z "$PORT" ]]; then
  cat "$TMP/server.err" >&2; echo "run_web_test.sh: bora serve did not listen within 60 s" >&2; exit 1
fi

if [[ ! -d "$HERE/node_modules/playwright-core" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

STATUS=0
CHROMIUM_PATH="$CHROMIUM" node "$HERE/chat_page.mjs" --base-url "http://127.0.0.1:$PORT" "${TEST_ARGS[@]}" || STATUS=$?
if [[ $STATUS -ne 0 ]]; then
  echo "--- bora serve stderr (last 40 lines) ---" >&2
  tail -n 40 "$TMP/server.err" >&2
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  SERVER_STATUS=0
  wait "$SERVER_PID" || SERVER_STATUS=$?
  echo "run_web_test.sh: bora serve died during the test (exit status $SERVER_STATUS)" >&2
  STATUS=1
fi
exit "$STATUS"
