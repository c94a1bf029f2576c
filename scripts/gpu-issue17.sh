#!/usr/bin/env bash
# Issue 17's measurements on the GPU machine, one part per call (each fits the 10-minute limit; every step has its
# own timeout, so a call cut short still brings back what finished):
#   bash scripts/gpu-issue17.sh profile    bench/admit_profile.py (where a continuous-batching admission's time
#                                          goes) and bench/sampler_cost.py (pick_tokens vs the full-sort reference
#                                          pick, same logits, tokens checked equal)
#   bash scripts/gpu-issue17.sh batching   bench/continuous_batching.py at realistic stop lengths: continuous vs
#                                          static batches in the same call (MODES, default bf16,fp8,nf4,int8)
#   bash scripts/gpu-issue17.sh tests      every GPU test (cuda/run_gpu_tests.sh), log in $OUT/gpu-tests.log
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
  tests)
    timeout 570 bash cuda/run_gpu_tests.sh 2>&1 | tail -40
    ;;
  *)
    echo "usage: bash scripts/gpu-issue17.sh profile|batching|tests" >&2
    exit 2
    ;;
esac
