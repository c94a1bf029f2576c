"""evalpipe's engine: StarCoder2 (and other causal LMs) scoring, generation and benchmarking."""

import os as _os

ENGINE_VERSION = "0.1.0"
PROTOCOL_VERSION = 1

# MKL's conditional numerical reproducibility, asked for before torch loads MKL: without it MKL may split work
# between threads dynamically and take alignment-dependent code paths, so the same product can round differently
# from run to run (invariant.py, docs/determinism.md). A value the user set is kept.
MKL_REPRODUCIBILITY = {"MKL_CBWR": "AUTO,STRICT", "MKL_DYNAMIC": "FALSE"}
for _name, _value in MKL_REPRODUCIBILITY.items():
    _os.environ.setdefault(_name, _value)
