"""evalpipe's engine: StarCoder2 (and other causal LMs) scoring, generation and benchmarking."""

import os as _os

ENGINE_VERSION = "0.1.0"
PROTOCOL_VERSION = 1

# MKL's conditional numerical reproducibility, asked for before torch loads MKL: without it MKL may split work
# between threads dynamically and take alignment-dependent code paths, so the same product can round differently
# from run to run (invariant.py, docs/determinism.md). A value the user set is kept.
MKL_REPRODUCIBILITY = {"MKL_CBWR": "AUTO,STRICT", "MKL_DYNAMIC": "FALSE"}
# OpenMP threads that sleep at a barrier instead of spinning: a spinning thread whose partner was descheduled burns
# its core until the partner runs again, so on a machine that is busy with other work (CI beside a CPU hog, a shared
# workstation) CPU scoring ran 3x slower (cuda/tests/test_model.py: 55 s against 17 s on 2 cores beside one busy
# loop); sleeping costs nothing measurable on an idle machine (16-18 s either way). Numerics do not change.
OPENMP_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}
for _name, _value in {**MKL_REPRODUCIBILITY, **OPENMP_WAIT}.items():
    _os.environ.setdefault(_name, _value)
