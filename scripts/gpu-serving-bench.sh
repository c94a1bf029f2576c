#!/usr/bin/env bash
# The serving benchmark on the GPU machine (no Node.js or network there): our engine behind its OpenAI-compatible
# HTTP server (`python -m evalpipe_engine http`) on a random full-size StarCoder2-3B checkpoint, bf16 + flash,
# timed by the bundled CLI's `bench --backend openai` at concurrency 1, 8 and 64 on HumanEval prompts; then, in the
# same call on the same card, the baseline: the engine's own generate op on the same 64 prompts as one batch.
# Needs .carry/{node.xz,evalpipe.mjs,HumanEval.jsonl.gz} (scripts/bundle-cli.sh); writes $OUT/serving-*.json|log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/serving-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=cuda
MAX_TOKENS="${SERVING_MAX_TOKENS:-256}"
xz -d < .carry/node.xz > /tmp/node && chmod +x /tmp/node
[ -f /tmp/starcoder2-3b-random/config.json ] || python3 bench/write_random_checkpoint.py --size 3b --out /tmp/starcoder2-3b-random
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/card.txt" || true
python3 -m evalpipe_engine http --port 0 --model /tmp/starcoder2-3b-random --served-model-name starcoder2-3b-random \
  --device cuda --quant bf16 --attn flash 2> "$OUT/serving-server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q 'listening on' "$OUT/serving-server.log" && break; sleep 1; done
URL="$(grep -o 'listening on http://[0-9.:]*' "$OUT/serving-server.log" | head -1 | sed 's/listening on //')/v1"
for eos in ignore-eos no-ignore-eos; do
  /tmp/node .carry/evalpipe.mjs bench --backend openai --base-url "$URL" --model starcoder2-3b-random \
    --serving-concurrency 1,8,64 --prompts humaneval --humaneval .carry/HumanEval.jsonl.gz --max-tokens "$MAX_TOKENS" \
    "--$eos" -o "$OUT/serving-$eos.json" 2>&1 | tee -a "$OUT/serving.log"
done
kill $SERVER; wait $SERVER || true
python3 bench/serving_baseline.py --model /tmp/starcoder2-3b-random --humaneval .carry/HumanEval.jsonl.gz \
  --prompts 64 --max-new-tokens "$MAX_TOKENS" > "$OUT/serving-baseline.json" 2>> "$OUT/serving.log"
cat "$OUT/serving-baseline.json"
python3 bench/serving_record.py "$OUT" > "$OUT/serving-record.json"
