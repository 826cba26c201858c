#!/usr/bin/env bash
# The first five minutes with bora, on the real trained model shipped in models/stories260K:
# (1) it continues a story exactly like llama2.c, (2) a LoRA fine-tune on a few stories about a
# new character changes what it writes, (3) `bora serve` answers two API calls, base and adapter,
# (4) where to go next. Needs no download and no ../shared; safe to run again. Exits non-zero
# when an output is not what it must be.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

step "setup: Debian packages and the release build of bora"
scripts/install-deps.sh
cmake --preset release >/dev/null
mkdir -p build
echo "building bora (a few minutes the first time; log: build/demo-build.log)"
cmake --build --preset release --target bora -j "$(nproc)" > build/demo-build.log 2>&1 || {
  tail -n 30 build/demo-build.log; echo "demo: FAILED: the build failed" >&2; exit 1; }
bora=build/release/apps/bora
model=models/stories260K
work=demo-output
rm -rf "$work"
mkdir -p "$work"

step "1/4 A real trained model writes a story"
echo "models/stories260K is Andrej Karpathy's stories260K (llama2.c, MIT): 260K parameters trained on"
echo "children's stories. Greedy decoding must give exactly what llama2.c's run.c prints."
show bora generate --model $model --prompt "'Once upon a time'" --temperature 0 --max-tokens 96
printf 'Once upon a time'
"$bora" generate --model $model --prompt "Once upon a time" --temperature 0 --max-tokens 96 2>/dev/null |
  tee "$work/base.txt"
echo
if [ "Once upon a time$(cat "$work/base.txt")" != "$(cat $model/reference_once_upon_a_time.txt)" ]; then
  echo "demo: FAILED: the continuation differs from llama2.c's reference ($model/reference_once_upon_a_time.txt)" >&2
  exit 1
fi
echo "(identical to llama2.c's output)"

step "2/4 Your own data: fine-tune a LoRA adapter on 8 stories about Pip the dragon"
echo "The model has never seen Pip. scripts/demo-data/pip-the-dragon.jsonl has 8 short stories about him."
show bora tune --model $model --data scripts/demo-data/pip-the-dragon.jsonl --out $work/pip --steps 60 --rank 8 --lr 5e-3 --seq-len 128
"$bora" tune --model $model --data scripts/demo-data/pip-the-dragon.jsonl --out "$work/pip" --steps 60 \
  --rank 8 --lr 5e-3 --seq-len 128 --seed 1 2>&1 | grep -v '^adapter:\|^metrics:' || true
adapter="$work/pip/checkpoints/checkpoint_000060/consolidated"
[ -f "$adapter/lora.safetensors" ] || { echo "demo: FAILED: no adapter was written" >&2; exit 1; }
show bora generate --model $model --lora "$adapter" --prompt "'Once upon a time'" --temperature 0 --max-tokens 54
"$bora" generate --model $model --lora "$adapter" --prompt "Once upon a time" --temperature 0 --max-tokens 54 \
  2>/dev/null > "$work/tuned.txt"
echo
printf 'before: Once upon a time%s\n' "$(head -c 160 "$work/base.txt" | tr '\n' ' ')..."
printf 'after:  Once upon a time%s\n' "$(tr '\n' ' ' < "$work/tuned.txt")"
grep -q "Pip" "$work/tuned.txt" || { echo "demo: FAILED: the tuned model does not write about Pip" >&2; exit 1; }

step "3/4 The API: bora serve with the base model and the adapter"
show bora serve --model stories=$model --lora stories:pip=$adapter --port 0 --state-dir none
"$bora" serve --model stories=$model --lora "stories:pip=$adapter" --port 0 --state-dir none \
  > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -n 1 | sed 's/.*://' || true)
  if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; echo "demo: FAILED: bora serve stopped" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.log" >&2; echo "demo: FAILED: bora serve did not start" >&2; exit 1; }
for name in stories pip; do
  body="{\"model\": \"$name\", \"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0}"
  show curl -s http://127.0.0.1:$port/v1/completions -H "'Content-Type: application/json'" -d "'$body'"
  curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' -d "$body" |
    tee "$work/api-$name.json"
  echo
  grep -q '"text"' "$work/api-$name.json" || { echo "demo: FAILED: no completion from $name" >&2; exit 1; }
done
kill $server 2>/dev/null || true
wait $server 2>/dev/null || true
trap - EXIT

step "4/4 Where to go next"
cat <<EOF
  Chat in the browser:   $bora serve --model $model   then open http://127.0.0.1:8080/
  Chat in the terminal:  $bora chat --model DIR        (an instruct model, e.g. a Mistral download)
  A real Mistral model:  download its folder (Hugging Face config.json + *.safetensors, or Mistral's
                         params.json + consolidated.safetensors), then
                           $bora quantize --model DIR --dtype q4 --out DIR-q4
                           $bora serve --model DIR-q4
                         (GGUF files are not read yet.) Supported releases: README, "Supported models".
  Fine-tune on your data: $bora tune --model DIR --data your.jsonl --out run   (README, "Fine-tuning")
EOF
