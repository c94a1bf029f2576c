#!/usr/bin/env bash
# HumanEval generation through `evalpipe run` on the GPU machine (the bundled CLI, see scripts/gpu-e2e.sh): all 164
# problems x n 20, temperature 0.8, 256 new tokens, on a random full-size StarCoder2-3B checkpoint, for each mode in
# GEN_MODES (default bf16 fp8). Random text reaches none of the stop strings (\x01 + the HumanEval stops' tails), so
# every sample runs to its 256 tokens, as in the issue's table. A tiny run (1 problem, 1 sample, 8 tokens) before
# each measures the command's fixed cost (engine start, load, compile); the stage's output tokens/s is
# tokens / (wall - fixed). Writes $OUT/generate-cli.json and $OUT/generate-cli.log.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=gpu-preamble.sh
source scripts/gpu-preamble.sh /tmp/generate-cli-out
MODES="${GEN_MODES:-bf16 fp8}"
xz -d < .carry/node.xz > /tmp/node && chmod +x /tmp/node
[ -f /tmp/starcoder2-3b-random/config.json ] || python3 bench/write_random_checkpoint.py --size 3b --out /tmp/starcoder2-3b-random
stops=(--stop $'\x01class' --stop $'\x01def' --stop $'\x01#' --stop $'\x01@' --stop $'\x01print' --stop $'\x01if' --stop $'\x01```' --stop $'\x01file_sep>')
echo '{}' > "$OUT/generate-cli.json"
for quant in $MODES; do
  common=(run --model /tmp/starcoder2-3b-random --device cuda --quant "$quant" --attn flash --tasks humaneval
    --stages generate --humaneval .carry/HumanEval.jsonl.gz "${stops[@]}")
  t0=$(date +%s.%N)
  /tmp/node .carry/evalpipe.mjs "${common[@]}" --limit 1 --n 1 --max-new-tokens 8 --run-dir "/tmp/gen-tiny-$quant" >> "$OUT/generate-cli.log" 2>&1
  t1=$(date +%s.%N)
  /tmp/node .carry/evalpipe.mjs "${common[@]}" --n 20 --temperature 0.8 --max-new-tokens 256 --run-dir "/tmp/gen-$quant" >> "$OUT/generate-cli.log" 2>&1
  t2=$(date +%s.%N)
  python3 - "$OUT/generate-cli.json" "$quant" "$t0" "$t1" "$t2" "/tmp/gen-$quant" <<'PY'
import json, sys
from pathlib import Path
out, quant, t0, t1, t2, run = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6]), Path(sys.argv[6])
recs = [json.loads(line) for line in (run / "records" / "generate.jsonl").read_text().splitlines() if line.strip()]
tokens = sum(r["n_new_tokens"] for r in recs)
manifest = json.loads((run / "manifest.json").read_text())
fixed, wall = t1 - t0, t2 - t1
row = {"samples": len(recs), "output_tokens": tokens, "wall_s": wall, "fixed_s": fixed,
       "output_tokens_per_s": tokens / max(1e-9, wall - fixed), "output_tokens_per_s_whole_command": tokens / wall,
       "batching": manifest.get("batching"), "finish_reasons": sorted({r["finish_reason"] for r in recs})}
record = json.loads(Path(out).read_text())
record[quant] = row
record["card"] = Path(out).with_name("card.txt").read_text().strip()
Path(out).write_text(json.dumps(record, indent=2))
print(quant, json.dumps(row))
PY
done
