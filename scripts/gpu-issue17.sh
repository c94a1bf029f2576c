#!/usr/bin/env bash
# Issue 17's measurements on the GPU machine, one part per call (each fits the 10-minute limit; every step has its
# own timeout, so a call cut short still brings back what finished):
#   bash scripts/gpu-issue17.sh profile    bench/admit_profile.py (where a continuous-batching admission's time
#                                          goes) and bench/sampler_cost.py (pick_tokens vs the full-sort reference
#                                          pick, same logits, tokens checked equal)
#   bash scripts/gpu-issue17.sh batching   bench/continuous_batching.py at realistic stop lengths: continuous vs
#                                          static batches in the same call (MODES, default bf16,fp8,nf4,int8)
#   bash scripts/gpu-issue17.sh decode     bench/sampler_cost.py, the one-row CUDA GEMV's GPU tests, then bench/decode_matrix.py at batch 1
#                                          and 32 (bf16 on the dense CUDA GEMV and on cuBLAS, the quantized modes,
#                                          HF) and bench/decode_profile.py's kernel list of a bf16 batch-1 step
#   bash scripts/gpu-issue17.sh first      when device time is short, the new code's checks and the main figures in
#                                          one call: sampler_cost at 1024 rows, the GEMV's GPU tests, decode_matrix at
#                                          batch 1 (bf16 on the GEMV and on cuBLAS, int8, fp8, nf4), continuous_batching
#                                          for bf16 (continuous vs static in the same run)
#   bash scripts/gpu-issue17.sh tests      every GPU test (cuda/run_gpu_tests.sh), log in $OUT/gpu-tests.log
#   bash scripts/gpu-issue17.sh full       bench/full_length_generation.py: the table's full-length rows (greedy
#                                          164 x 512, 164 x 20 at T 0.2 / 0.8 and 256 / 512 new tokens; MODES)
#   bash scripts/gpu-issue17.sh models     bench/llama_h200.py for StarCoder2-3B: prefill 2x4096 / 2x16384 against
#                                          HF, batch 64 against HF generate, the quantized modes' prefill and decode
#                                          ratios to bf16 in the same call
# Results land in $OUT, to be committed under bench/results/ with the card and date in the name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=gpu-preamble.sh
source scripts/gpu-preamble.sh /tmp/issue17-out
export PYTHONPATH="$PWD/bench:$PYTHONPATH"
case "${1:-}" in
  profile)
    timeout 150 python3 bench/admit_profile.py --out "$OUT/admit-profile.json" > "$OUT/admit-profile.log" 2>&1 || true
    tail -40 "$OUT/admit-profile.log"
    timeout 200 python3 bench/sampler_cost.py --out "$OUT/sampler-cost.json" > "$OUT/sampler-cost.log" 2>&1 || true
    tail -8 "$OUT/sampler-cost.log"
    ;;
  batching)
    timeout 560 python3 bench/continuous_batching.py --modes "${MODES:-bf16,fp8,nf4,int8}" \
      --out "$OUT/continuous-batching.json" > "$OUT/continuous-batching.log" 2>&1 || true
    tail -30 "$OUT/continuous-batching.log"
    ;;
  decode)
    timeout 140 python3 bench/sampler_cost.py --out "$OUT/sampler-cost.json" > "$OUT/sampler-cost.log" 2>&1 || true
    tail -6 "$OUT/sampler-cost.log"
    timeout 150 python3 -m pytest -q -m gpu cuda/tests/test_gemv_cuda.py > "$OUT/gemv-tests.log" 2>&1 || true
    tail -5 "$OUT/gemv-tests.log"
    timeout 220 python3 bench/decode_matrix.py --variants "${VARIANTS:-bf16,bf16-cublas,int8,fp8,nf4,hf-bf16}" \
      --out "$OUT/decode-matrix.json" > "$OUT/decode-matrix.log" 2>&1 || true
    tail -25 "$OUT/decode-matrix.log"
    timeout 70 python3 bench/decode_profile.py --quants bf16,nf4 --out "$OUT/decode-profile.json" \
      > "$OUT/decode-profile.log" 2>&1 || true
    tail -30 "$OUT/decode-profile.log"
    ;;
  first)
    timeout 60 python3 bench/sampler_cost.py --rows 1024 --stds 1 --out "$OUT/sampler-cost.json" \
      > "$OUT/sampler-cost.log" 2>&1 || true
    tail -3 "$OUT/sampler-cost.log"
    timeout 110 python3 -m pytest -q -m gpu cuda/tests/test_gemv_cuda.py cuda/tests/test_sampling.py \
      > "$OUT/gemv-sampling-tests.log" 2>&1 || true
    tail -5 "$OUT/gemv-sampling-tests.log"
    timeout 150 python3 bench/decode_matrix.py --variants bf16,bf16-cublas,int8,fp8,nf4 --batches 1 \
      --out "$OUT/decode-matrix.json" > "$OUT/decode-matrix.log" 2>&1 || true
    tail -9 "$OUT/decode-matrix.log"
    timeout 250 python3 bench/continuous_batching.py --modes bf16 --out "$OUT/continuous-batching.json" \
      > "$OUT/continuous-batching.log" 2>&1 || true
    tail -20 "$OUT/continuous-batching.log"
    ;;
  tests)
    timeout "${TESTS_TIMEOUT:-570}" bash cuda/run_gpu_tests.sh 2>&1 | tail -40 || true
    ;;
  full)
    timeout "${FULL_TIMEOUT:-560}" python3 bench/full_length_generation.py --modes "${MODES:-bf16}" \
      --out "$OUT/full-length.json" > "$OUT/full-length.log" 2>&1 || true
    grep -v "^\[full-length" "$OUT/full-length.log" | tail -20
    ;;
  models)
    timeout "${MODELS_TIMEOUT:-560}" python3 bench/llama_h200.py --configs starcoder2-3b --hf starcoder2-3b \
      --quant-configs starcoder2-3b --group-rows 640 --out "$OUT/family-starcoder2-3b.json" \
      > "$OUT/family-starcoder2-3b.log" 2>&1 || true
    tail -14 "$OUT/family-starcoder2-3b.log"
    ;;
  *)
    echo "usage: bash scripts/gpu-issue17.sh profile|batching|decode|first|tests|full|models" >&2
    exit 2
    ;;
esac
