#!/usr/bin/env bash
# Every GPU test of the engine (pytest -m gpu over cuda/tests: the native model's and the quant kernels') in one
# call on the GPU machine. Run from the repository root:  bash cuda/run_gpu_tests.sh [extra pytest args]
# GPU_TEST_PATHS="cuda/tests/test_a.py cuda/tests/test_b.py" narrows it to some files.
# Uses $PYTHON (default python3, the interpreter that holds CUDA PyTorch there); installs pytest from carried
# wheels in .whl/ when that interpreter lacks it. Writes the log to $OUT/gpu-tests.log when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import pytest" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/pytest-site .whl/pytest-*.whl \
      .whl/pluggy-*.whl .whl/iniconfig-*.whl .whl/packaging-*.whl .whl/pygments-*.whl
    export PYTHONPATH="/tmp/pytest-site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "run_gpu_tests.sh: $PY has no pytest and no wheels in .whl/ (carry .whl with pytest and its deps)" >&2
    exit 2
  fi
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_gpu_tests.sh: no CUDA device visible')"
export PYTHONUNBUFFERED=1
LOG="${OUT:-/tmp}/gpu-tests.log"
set -o pipefail
# shellcheck disable=SC2086
"$PY" -m pytest -m gpu ${GPU_TEST_PATHS:-cuda/tests} -q -rA -s -p no:cacheprovider "$@" 2>&1 | tee "$LOG"
