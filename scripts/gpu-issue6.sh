#!/usr/bin/env bash
# Issue 6 on the GPU machine, one part per call (each fits the 10-minute limit):
#   bash scripts/gpu-issue6.sh tests   every GPU test (cuda/run_gpu_tests.sh; carry .whl for pytest), including the
#                                      opt-in fast paths' tests (NVRTC GEMV, decode kernel + CUDA graphs, fused fp8)
#   bash scripts/gpu-issue6.sh bench   bench/quant_linears.py with the NVRTC GEMV on and off; the whole-model fp8
#                                      prefill with the fusion on and off; bf16 baseline in the same call each time
#   bash scripts/gpu-issue6.sh decode  bench/decode_matrix.py: whole-model decode tokens/s per precision at batch 1
#                                      and 32, graphs on and off, the Triton GEMV, and HF transformers' own decode
#   bash scripts/gpu-issue6.sh e2e     scripts/gpu-e2e.sh: all six precisions through the perplexity and latency
#                                      stages through the bundled CLI (carry .carry, see that script)
# Results land in $OUT (JSON + logs), to be committed under bench/results/ with the card and date in the name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=gpu-preamble.sh
source scripts/gpu-preamble.sh /tmp/issue6-out
case "${1:-}" in
  tests)
    bash cuda/run_gpu_tests.sh 2>&1 | tail -40
    ;;
  bench)
    for rtc in 1 0; do
      EVALPIPE_CUDA_RTC=$rtc python3 bench/quant_linears.py --variants bf16,int8,nf4,fp8 \
        --out "$OUT/quant-linears-rtc$rtc.json" 2>&1 | tail -14
    done
    for fused in 1 0; do
      EVALPIPE_FP8_FUSED=$fused python3 bench/quant_linears.py --variants bf16,fp8 --prefill-m 512 --reps 5 \
        --decode-m 1 --model --model-attn flash --model-steps 4 --out "$OUT/fp8-model-fused$fused.json" 2>&1 | tail -8
    done
    ;;
  decode)
    python3 bench/decode_matrix.py --out "$OUT/decode-matrix.json" 2>&1 | tail -34
    ;;
  e2e)
    OUT="$OUT" bash scripts/gpu-e2e.sh
    tail -60 "$OUT/e2e.log"
    ;;
  *)
    echo "usage: bash scripts/gpu-issue6.sh tests|bench|decode|e2e" >&2
    exit 2
    ;;
esac
