#!/usr/bin/env bash
# Real mpirun groups on one machine (ctest label mpi): the same ids as one rank, printed once;
# refusals (KV heads, another model); a served group's /health, idle CPU, a killed rank and
# SIGTERM. One thread per rank, --oversubscribe, shared memory or TCP on loopback.
#   tests/dist/mpi_test.sh BORA_BINARY SHARED_DIR CASE
set -uo pipefail
BORA=$1
SHARED=$2
CASE=$3
if [ "$SHARED" = auto ]; then  # as the C++ tests find it: BORA_SHARED, else shared/ beside the checkout
  SHARED=${BORA_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
fi
if [ ! -d "$SHARED/reference-models" ]; then
  [ "${CI:-}" = true ] && { echo "FAIL: shared data folder not found at $SHARED (CI=true)"; exit 1; }
  echo "SKIP: no shared data folder at $SHARED (set BORA_SHARED)"; exit 77
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

same_ids() {  # MODEL RANKS [mpirun args...]: N ranks print one rank's ids, once
  local model=$1 ranks=$2; shift 2
  local args=(generate --model "$model" --tokens 1,100,200,250 --max-tokens 64 --temperature 0 -t 1)
  "$BORA" "${args[@]}" >"$WORK/one.txt" 2>/dev/null || fail "one rank failed on $model"
  timeout 120 "${MPIRUN[@]}" "$@" -np "$ranks" "$BORA" "${args[@]}" >"$WORK/group.txt" 2>"$WORK/group.err" ||
    { cat "$WORK/group.err"; fail "$ranks ranks failed on $model"; }
  [ "$(wc -l <"$WORK/group.txt")" -eq "$(wc -l <"$WORK/one.txt")" ] || fail "output not printed once: $(cat "$WORK/group.txt")"
  cmp -s "$WORK/one.txt" "$WORK/group.txt" || fail "$ranks ranks on $model: $(cat "$WORK/group.txt") vs $(cat "$WORK/one.txt")"
  echo "ok - $model on $ranks ranks: $(head -c 60 "$WORK/one.txt")..."
}

wait_for_port() {  # LOG: sets PORT from the server's "listening on" line (60 s at most)
  PORT=""
  for _ in $(seq 600); do
    PORT=$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]\+' "$1" | grep -o '[0-9]\+$')
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  cat "$1"
  fail "the group did not start serving"
}

start_server() {  # RANKS: starts `mpirun -np RANKS bora serve`, sets PORT and SERVER
  "$BORA" make-model --preset tiny --tokenizer "$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3" \
    --out "$WORK/model" -t 1 >/dev/null || fail "make-model"
  "${MPIRUN[@]}" -np "$1" "$BORA" serve --model "tiny=$WORK/model" --host 127.0.0.1 --port 0 --state-dir none -t 1 \
    >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  wait_for_port "$WORK/serve.log"
}

rank_pid() {  # RANK: the pid of that rank's bora process
  for pid in $(pgrep -f "$BORA serve"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$pid"; return; fi
  done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

case $CASE in
  reference)
    for model in tiny-dense/mistral tiny-moe/mistral tiny-ministral3/mistral; do
      same_ids "$SHARED/reference-models/$model" 2
    done ;;
  tcp)  # four ranks over TCP on loopback (no shared memory)
    same_ids "$SHARED/real-models/stories260K" 4 --mca btl tcp,self --mca btl_tcp_if_include lo ;;
  three-ranks)
    "$BORA" make-model --preset tiny --kv-heads 6 --vocab 1000 --out "$WORK/kv6" -t 1 >/dev/null || fail "make-model"
    same_ids "$WORK/kv6" 3
    same_ids "$WORK/kv6" 2 ;;
  kv-heads)
    start=$SECONDS
    timeout 60 "${MPIRUN[@]}" -np 3 "$BORA" generate --model "$SHARED/reference-models/tiny-dense/mistral" --tokens 1,2 \
      -t 1 >/dev/null 2>"$WORK/err"
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "3 ranks over 2 KV heads: exit $rc"
    grep -q "KV heads" "$WORK/err" && grep -q "1, 2" "$WORK/err" || fail "no KV heads message: $(cat "$WORK/err")"
    echo "ok - refused in $((SECONDS - start)) s: $(grep -m1 'KV heads' "$WORK/err")" ;;
  other-model)  # rank 1 holds another model (MPMD launch): refused, naming the rank
    "$BORA" make-model --preset tiny --vocab 512 --seed 1 --out "$WORK/a" -t 1 >/dev/null
    "$BORA" make-model --preset tiny --vocab 512 --seed 1 --out "$WORK/b" -t 1 >/dev/null
    sed -i 's/"norm_eps": 1e-05/"norm_eps": 1e-06/' "$WORK/b/params.json"
    grep -q '1e-06' "$WORK/b/params.json" || fail "could not edit params.json: $(cat "$WORK/b/params.json")"
    timeout 60 "${MPIRUN[@]}" -np 1 "$BORA" generate --model "$WORK/a" --tokens 1,2 -t 1 : \
      -np 1 "$BORA" generate --model "$WORK/b" --tokens 1,2 -t 1 >/dev/null 2>"$WORK/err"
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "another model on rank 1: exit $rc"
    grep -q "rank 1 holds another model" "$WORK/err" || fail "no message naming rank 1: $(cat "$WORK/err")"
    echo "ok - $(grep -m1 'another model' "$WORK/err")" ;;
  serve)  # /health reports the group; idle ranks sleep; SIGTERM stops every rank
    start_server 2
    curl -sf "http://127.0.0.1:$PORT/health" | grep -q '"ranks":2' || fail "/health: $(curl -s "http://127.0.0.1:$PORT/health")"
    curl -sf "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model": "tiny", "prompt": "hello", "max_tokens": 8, "temperature": 0}' | grep -q '"choices"' || fail "completion"
    worker=$(rank_pid 1)
    [ -n "$worker" ] || fail "rank 1 not found"
    before=$(cpu_ticks "$worker"); sleep 3; after=$(cpu_ticks "$worker")
    hz=$(getconf CLK_TCK)
    # < 5 % of a core over 3 s of idling
    [ $((after - before)) -le $((hz * 3 / 20)) ] || fail "idle rank 1 used $((after - before)) ticks of $((hz * 3))"
    echo "ok - idle rank 1: $((after - before)) ticks in 3 s ($hz per s)"
    # A long streamed request in flight when mpirun gets SIGTERM: it ends with an error event.
    curl -sN "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model": "tiny", "prompt": "hello", "max_tokens": 1500, "temperature": 1, "stream": true}' \
      >"$WORK/stream.out" 2>&1 &
    client=$!
    for _ in $(seq 100); do grep -q '"text"' "$WORK/stream.out" && break; sleep 0.05; done
    kill -TERM "$SERVER"
    for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER" 2>/dev/null && fail "mpirun still running 10 s after SIGTERM"
    pgrep -f "$BORA serve" >/dev/null && fail "a rank outlived SIGTERM"
    wait "$client" || fail "the in-flight request's connection was cut: $(tail -c 300 "$WORK/stream.out")"
    grep -q 'server is stopping\|\[DONE\]' "$WORK/stream.out" || fail "no error event: $(tail -c 300 "$WORK/stream.out")"
    echo "ok - SIGTERM stopped every rank; the in-flight request got: $(tail -n 2 "$WORK/stream.out" | head -c 120)" ;;
  kill-rank)  # a rank killed mid-service ends the whole group quickly, non-zero
    start_server 2
    worker=$(rank_pid 1)
    [ -n "$worker" ] || fail "rank 1 not found"
    kill -9 "$worker"
    start=$SECONDS
    wait "$SERVER"
    rc=$?
    [ $rc -ne 0 ] || fail "the group exited 0 after losing rank 1"
    [ $((SECONDS - start)) -lt 10 ] || fail "the group took $((SECONDS - start)) s to stop"
    grep -qi "rank 1\|process rank 1\|exited on signal" "$WORK/serve.log" || fail "no message naming the rank: $(tail -5 "$WORK/serve.log")"
    pgrep -f "$BORA serve" >/dev/null && fail "a rank outlived the group"
    echo "ok - group stopped in $((SECONDS - start)) s, exit $rc: $(grep -m1 -i 'rank 1' "$WORK/serve.log")" ;;
  two-models)  # two models served by one group (a communicator each): the same answers as one process
    for seed in 1 2; do
      "$BORA" make-model --preset tiny --seed $seed --tokenizer "$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3" \
        --out "$WORK/m$seed" -t 1 >/dev/null || fail "make-model"
    done
    for launch in one group; do
      prefix=()
      [ $launch = group ] && prefix=("${MPIRUN[@]}" -np 2)
      "${prefix[@]}" "$BORA" serve --model "a=$WORK/m1" --model "b=$WORK/m2" --host 127.0.0.1 --port 0 --state-dir none \
        -t 1 >"$WORK/$launch.log" 2>&1 &
      SERVER=$!
      wait_for_port "$WORK/$launch.log"
      for model in a b a b; do  # concurrently: both engines (and both groups) busy at once
        curl -sf "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
          -d "{\"model\": \"$model\", \"prompt\": \"hello\", \"max_tokens\": 24, \"temperature\": 0}" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])' >"$WORK/$launch.$model.$RANDOM" &
      done
      wait $(jobs -p | grep -v "^$SERVER\$")
      kill -TERM "$SERVER"; wait "$SERVER"
      for model in a b; do cat "$WORK"/$launch.$model.* | sort -u >"$WORK/$launch.$model.txt"; done
    done
    for model in a b; do
      [ "$(wc -l <"$WORK/group.$model.txt")" -eq 1 ] || fail "model $model: answers differ: $(cat "$WORK/group.$model.txt")"
      cmp -s "$WORK/one.$model.txt" "$WORK/group.$model.txt" ||
        fail "model $model: $(cat "$WORK/group.$model.txt") vs one process: $(cat "$WORK/one.$model.txt")"
    done
    echo "ok - two models on 2 ranks answer as one process: $(cat "$WORK/group.a.txt" | head -c 40) / $(cat "$WORK/group.b.txt" | head -c 40)" ;;
  serve-tune)  # fine-tuning jobs of a served group train on both ranks; cancelling stops them all
    "$BORA" make-model --preset tiny --tokenizer "$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3" \
      --out "$WORK/model" -t 1 >/dev/null || fail "make-model"
    "$BORA" make-dataset --out "$WORK/train.jsonl" --count 100 >/dev/null
    "${MPIRUN[@]}" -np 2 "$BORA" serve --model "tiny=$WORK/model" --host 127.0.0.1 --port 0 --state-dir "$WORK/state" \
      -t 1 >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    wait_for_port "$WORK/serve.log"
    api="http://127.0.0.1:$PORT/v1"
    file=$(curl -sf "$api/files" -F purpose=fine-tune -F "file=@$WORK/train.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    job() {  # STEPS: creates a job, prints its id
      curl -sf "$api/fine_tuning/jobs" -H 'Content-Type: application/json' -d "{\"model\": \"tiny\", \"training_files\":
        [{\"file_id\": \"$file\", \"weight\": 1}], \"hyperparameters\": {\"training_steps\": $1, \"learning_rate\": 0.001,
        \"seq_len\": 128}, \"auto_start\": true}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
    }
    field() { curl -sf "$api/fine_tuning/jobs/$1" | python3 -c "import json,sys; print(json.load(sys.stdin)$2)"; }
    wait_status() {  # JOB STATUS...
      local id=$1; shift
      for _ in $(seq 1200); do
        status=$(field "$id" '["status"]')
        for want in "$@"; do [ "$status" = "$want" ] && return 0; done
        [ "$status" = FAILED ] && { tail -5 "$WORK/serve.log"; fail "job $id failed"; }
        sleep 0.1
      done
      fail "job $id stayed $status"
    }
    first=$(job 6)
    wait_status "$first" SUCCESS
    [ "$(field "$first" '["metadata"]["train_tokens_per_step"]')" = 256 ] || fail "a step did not train one sequence per rank"
    model=$(field "$first" '["fine_tuned_model"]')
    curl -sf "$api/completions" -H 'Content-Type: application/json' \
      -d "{\"model\": \"$model\", \"prompt\": \"hello\", \"max_tokens\": 4}" | grep -q choices || fail "$model does not answer"
    second=$(job 100000)
    wait_status "$second" RUNNING
    curl -sf -X POST "$api/fine_tuning/jobs/$second/cancel" >/dev/null || fail "cancel"
    wait_status "$second" CANCELLED
    third=$(job 4)  # the ranks are in step again after a cancelled job
    wait_status "$third" SUCCESS
    kill -TERM "$SERVER"
    wait "$SERVER"
    pgrep -f "$BORA serve" >/dev/null && fail "a rank outlived the server"
    grep -q "rank 1" "$WORK/serve.log" && fail "rank 1 reported: $(grep 'rank 1' "$WORK/serve.log")"
    echo "ok - jobs trained on 2 ranks (256 tokens per step), $model answers, a cancelled job stopped every rank" ;;
  tune)  # data parallel: 2 ranks x --grad-accum 1 == 1 rank x --grad-accum 2; resume across N
    "$BORA" make-model --preset tiny --tokenizer "$SHARED/tokenizers/mistral_instruct_tokenizer_240323.model.v3" \
      --out "$WORK/model" -t 1 >/dev/null || fail "make-model"
    "$BORA" make-dataset --out "$WORK/train.jsonl" --count 200 >/dev/null
    "$BORA" make-dataset --out "$WORK/other.jsonl" --count 200 --seed 9 >/dev/null
    "$BORA" make-dataset --out "$WORK/eval.jsonl" --count 20 --seed 5 >/dev/null
    common=(tune --model "$WORK/model" --eval "$WORK/eval.jsonl" --steps 6 --seq-len 64 --rank 4 -t 1 --ckpt-every 3 --quiet)
    "$BORA" "${common[@]}" --data "$WORK/train.jsonl" --grad-accum 2 --out "$WORK/one" >/dev/null 2>&1 || fail "one rank"
    timeout 120 "${MPIRUN[@]}" -np 2 "$BORA" "${common[@]}" --data "$WORK/train.jsonl" --grad-accum 1 --out "$WORK/two" \
      >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; fail "two ranks"; }
    cp -r "$WORK/one" "$WORK/resumed" && rm -rf "$WORK/resumed/checkpoints/checkpoint_000006"
    timeout 120 "${MPIRUN[@]}" -np 2 "$BORA" "${common[@]}" --data "$WORK/train.jsonl" --grad-accum 1 --out "$WORK/resumed" \
      --resume >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; fail "resume on two ranks"; }
    # rank 1 reading other data (same size) must change the losses
    timeout 120 "${MPIRUN[@]}" -np 1 "$BORA" "${common[@]}" --data "$WORK/train.jsonl" --grad-accum 1 --out "$WORK/mixed" : \
      -np 1 "$BORA" "${common[@]}" --data "$WORK/other.jsonl" --grad-accum 1 --out "$WORK/mixed" >/dev/null 2>&1 ||
      fail "mixed data run"
    python3 - "$WORK" <<'PY' || fail "losses differ"
import json, sys
work = sys.argv[1]
def losses(name):
    return [(m["step"], m.get("loss"), m.get("eval_loss")) for m in map(json.loads, open(f"{work}/{name}/metrics.jsonl"))]
one, two, resumed, mixed = losses("one"), losses("two"), losses("resumed"), losses("mixed")
def close(a, b):
    return len(a) == len(b) and all(x[0] == y[0] and all((u is None and v is None) or abs(u - v) <= 1e-4
               for u, v in zip(x[1:], y[1:])) for x, y in zip(a, b))
assert close(one, two), (one, two)
assert close(one, resumed), (one, resumed)
assert not close(one, mixed), "a rank reading other data did not change the losses"
print("ok - 2 ranks == --grad-accum 2 over", len(one), "metrics lines; resume across N; rank 1's data counts")
PY
    ;;
  *) fail "unknown case $CASE" ;;
esac
