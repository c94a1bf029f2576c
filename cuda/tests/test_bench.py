"""The latency cell: the study's protocol on a real (tiny, CPU) native model; OOM handling on the GPU."""

from __future__ import annotations

import pytest
import torch
from _native_helpers import tiny_config

from evalpipe_engine.bench import run_bench
from evalpipe_engine.errors import BadRequest
from evalpipe_engine.model import NativeStarcoder2, Starcoder2Config


def test_protocol_on_cpu() -> None:
    model = NativeStarcoder2.random(tiny_config(), device="cpu", quant="fp32", attn="sdpa")
    events: list[tuple[str, dict]] = []
    res = run_bench(model, {"batch": 2, "ctx": 40}, lambda e, d: events.append((e, d)))
    assert res["status"] == "ok"
    assert len(res["times"]) == 16 and (res["iters"], res["repeats"]) == (4, 4)
    flat = sorted(res["times"])
    assert all(t > 0 for t in flat)
    assert res["seconds_per_minibatch"] == pytest.approx((flat[7] + flat[8]) / 2)
    assert res["tokens_per_s"] == pytest.approx(80 / res["seconds_per_minibatch"])
    assert res["peak_gib"] is None
    assert [d["done"] for _, d in events] == [4, 8, 12, 16]


def test_bad_params() -> None:
    model = NativeStarcoder2.random(tiny_config(max_position_embeddings=64), device="cpu", quant="fp32")
    with pytest.raises(BadRequest, match="ctx 65 exceeds the model's maximum context of 64"):
        run_bench(model, {"batch": 1, "ctx": 65})
    with pytest.raises(BadRequest, match="batch must be an integer >= 1"):
        run_bench(model, {"batch": 0, "ctx": 8})
    with pytest.raises(BadRequest, match="unknown parameter"):
        run_bench(model, {"batch": 1, "ctx": 8, "dtype": "bf16"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_oom_cell_is_reported_and_engine_carries_on() -> None:
    cfg = Starcoder2Config.from_dict({**Starcoder2Config.preset("3b").to_hf_dict(), "num_hidden_layers": 2})
    model = NativeStarcoder2.random(cfg, device="cuda", quant="bf16", attn="flash")
    free_before = torch.cuda.mem_get_info()[0]
    res = run_bench(model, {"batch": 512, "ctx": 16384, "warmup": 1, "iters": 1, "repeats": 1})
    assert res["status"] == "oom" and res["tokens_per_s"] is None
    assert torch.cuda.mem_get_info()[0] >= free_before - 2**30  # memory handed back
    ok = run_bench(model, {"batch": 2, "ctx": 4096, "warmup": 1, "iters": 2, "repeats": 1})
    assert ok["status"] == "ok" and ok["tokens_per_s"] > 0 and ok["peak_gib"] > 0
