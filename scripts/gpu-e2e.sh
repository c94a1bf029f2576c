#!/usr/bin/env bash
# End to end on the GPU machine (no Node.js, no Docker, no network there): the bundled CLI (scripts/bundle-cli.sh)
# drives the real engine through our kernels on a random full-size StarCoder2-3B checkpoint, every precision
# (E2E_MODES, default all six) through the perplexity and latency stages, and bf16 and fp8 (E2E_GENERATE) also
# through HumanEval generation, all with flash attention. Execution of the generated samples happens on a machine
# with Docker from a copy of the run directories (two-phase run):
#   evalpipe run <same flags> --stages execute,score,report --run-dir <copy>
# Needs .carry/{node.xz,evalpipe.mjs,HumanEval.jsonl.gz}; writes $OUT/e2e-runs.tar.gz and $OUT/e2e.log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/e2e-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 EVALPIPE_PYTHON="${EVALPIPE_PYTHON:-python3}"
MODES="${E2E_MODES:-bf16 fp16 fp32 int8 nf4 fp8}"
GENERATE="${E2E_GENERATE:-bf16 fp8}"
# the latency grid (fp32 at 2x16384 alone takes minutes: pass a smaller grid for it in a separate invocation)
BATCHES="${E2E_BATCHES:-2,4}" CONTEXTS="${E2E_CONTEXTS:-4096,16384}"
xz -d < .carry/node.xz > /tmp/node && chmod +x /tmp/node
[ -f /tmp/starcoder2-3b-random/config.json ] || python3 bench/write_random_checkpoint.py --size 3b --out /tmp/starcoder2-3b-random
mkdir -p /tmp/e2e-runs
for quant in $MODES; do
  tasks=perplexity,latency stages=perplexity,latency
  case " $GENERATE " in *" $quant "*) tasks=perplexity,humaneval,latency stages=perplexity,generate,latency ;; esac
  /tmp/node .carry/evalpipe.mjs run --model /tmp/starcoder2-3b-random --device cuda --quant "$quant" --attn flash \
    --tasks "$tasks" --stages "$stages" \
    --dataset builtin:smoke --rows 24 --humaneval .carry/HumanEval.jsonl.gz --limit 8 --max-new-tokens 64 \
    --batches "$BATCHES" --contexts "$CONTEXTS" --run-dir "/tmp/e2e-runs/3b-$quant-flash" 2>&1 | tee -a "$OUT/e2e.log"
  # after every mode, so that a call cut off by its time limit still brings back the modes that finished
  tar -C /tmp/e2e-runs -czf "$OUT/e2e-runs.tar.gz.tmp" . && mv "$OUT/e2e-runs.tar.gz.tmp" "$OUT/e2e-runs.tar.gz"
done
