#!/usr/bin/env bash
# The deterministic (batch-invariant) engine on the GPU machine, one part per call (each fits the 10-minute limit):
#   bash scripts/gpu-determinism.sh tests    the invariant kernels' and whole-model GPU tests (test_invariant.py)
#   bash scripts/gpu-determinism.sh speed    bench/determinism.py speed: prefill 2x4096, decode batch 1 and 64,
#                                            fast path vs deterministic, per precision, same process
#   bash scripts/gpu-determinism.sh greedy   bench/determinism.py greedy: 164 HumanEval prompts x 256 greedy tokens
#                                            at batch 1, 8, 64, 256 in both modes (carry .gpu-data with
#                                            HumanEval.jsonl.gz in it)
#   bash scripts/gpu-determinism.sh all-tests  every GPU test (cuda/run_gpu_tests.sh)
# Results land in $OUT, to be committed under bench/results/ with the card and date in the name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=gpu-preamble.sh
source scripts/gpu-preamble.sh /tmp/determinism-out
case "${1:-}" in
  tests)
    GPU_TEST_PATHS="cuda/tests/test_invariant.py" bash cuda/run_gpu_tests.sh -x 2>&1 | tail -30
    ;;
  speed)
    (cd bench && python3 determinism.py speed --quants "${QUANTS:-bf16,int8,fp8,nf4}" --out "$OUT/determinism-speed.json") 2>&1 | tee "$OUT/speed.log" | tail -12
    ;;
  greedy)
    (cd bench && python3 determinism.py greedy --humaneval ../.gpu-data/HumanEval.jsonl.gz --out "$OUT/determinism-greedy.json") 2>&1 | tee "$OUT/greedy.log" | tail -14
    ;;
  all-tests)
    bash cuda/run_gpu_tests.sh 2>&1 | tail -40
    ;;
  *)
    echo "usage: bash scripts/gpu-determinism.sh tests|speed|greedy|all-tests" >&2
    exit 2
    ;;
esac
