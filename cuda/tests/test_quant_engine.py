"""Every precision mode through the real engine process (the tiny preset on CPU): load reports the mode and the
smaller weight bytes, and perplexity scoring runs with nll close to the fp32 model's. Bad modes get a clear error."""

from __future__ import annotations

import math

import pytest
from conftest import PRESET, EngineProcess

TEXT = {"index": 0, "text": "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n"}


@pytest.fixture(scope="module")
def proc() -> EngineProcess:
    p = EngineProcess()
    yield p
    p.close()


def test_every_mode_loads_and_scores(proc: EngineProcess) -> None:
    results = {}
    for mode in ("fp32", "bf16", "int8", "nf4", "fp8"):
        loaded, _ = proc.ok("load", {"model": PRESET, "seed": 0, "quant": mode, "device": "cpu"})
        assert loaded["quant"] == mode
        scored, _ = proc.ok("score", {"rows": [TEXT]})
        row = scored["rows"][0]
        results[mode] = (loaded["weight_bytes"], row["nll_sum"] / row["n_scored_tokens"])
    ref_bytes, ref_nll = results["fp32"]
    for mode, (_nbytes, nll) in results.items():
        assert math.isfinite(nll)
        assert abs(nll - ref_nll) < {"fp32": 1e-9, "bf16": 0.05, "int8": 0.05, "fp8": 0.2, "nf4": 0.5}[mode], mode
    # quantized payloads are smaller than fp32 even with the dense embedding/head of the tiny model
    assert results["int8"][0] < ref_bytes and results["nf4"][0] < results["int8"][0]


def test_unknown_mode_is_a_clear_bad_request(proc: EngineProcess) -> None:
    err = proc.error("load", {"model": PRESET, "quant": "int4", "device": "cpu"})
    assert err["type"] == "bad_request"
    assert "int4" in err["message"] and "nf4" in err["message"] + err.get("hint", "")
