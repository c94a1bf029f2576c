"""Perplexity figures from the engine agree with a straightforward HF transformers computation.

The reference below shares no code with scoring.py: it tokenizes with AutoTokenizer, walks the windows as
docs/engine-protocol.md describes them, runs AutoModelForCausalLM (fp32, eager attention) on each window alone and
sums -log_softmax at the targets in float64.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import EngineProcess

RTOL = 1e-5

TEXTS = [
    'def add(a, b):\n    """Add two numbers."""\n    return a + b\n',
    "print('hello, world')",
    "x = [i * i for i in range(10)]  # squares\n",
    "naïve café — ünïcödé ✓ 数字\n",
    "import json\n\n\ndef load(path):\n    with open(path) as fh:\n        return json.load(fh)\n" * 12,
]


def reference_windows(n: int, max_length: int, stride: int) -> list[tuple[int, int]]:
    """(begin, end) of each window per the documented rule; the window scores positions from the previous
    window's end (or 1) to end - 1."""
    windows: list[tuple[int, int]] = []
    begin = 0
    while n >= 2:
        end = min(n, begin + max_length)
        windows.append((begin, end))
        if end >= n:
            break
        begin = begin + stride if begin + stride < end else end - 1
    return windows


def reference_scores(model_dir: Path, texts: list[str], max_length: int, stride: int, add_bos: bool) -> list[dict]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    out = []
    for text in texts:
        text_ids = tok(text, add_special_tokens=False)["input_ids"]
        ids = ([tok.bos_token_id] if add_bos else []) + text_ids
        nll, count, prev_end = 0.0, 0, 1
        windows = reference_windows(len(ids), max_length, stride)
        for begin, end in windows:
            chunk = torch.tensor([ids[begin:end]])
            with torch.no_grad():
                logits = model(chunk).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            for pos in range(prev_end, end):
                nll -= float(logp[pos - begin - 1, ids[pos]])
                count += 1
            prev_end = end
        out.append({"nll_sum": nll, "n_scored_tokens": count, "n_tokens": len(text_ids), "n_windows": len(windows)})
    return out


@pytest.fixture(scope="module")
def local_engine(preset_dir: Path):
    proc = EngineProcess()
    yield proc
    proc.close()


@pytest.mark.parametrize(("backend", "class_name"), [("native", "NativeStarcoder2"), ("hf", "HfBackend")])
@pytest.mark.parametrize(
    ("max_length", "stride", "add_bos"),
    [(512, 512, True), (128, 96, True), (128, 128, True), (100, 1 + 40, False)],
)
def test_engine_matches_hf_reference(
    local_engine: EngineProcess,
    preset_dir: Path,
    max_length: int,
    stride: int,
    add_bos: bool,
    backend: str,
    class_name: str,
) -> None:
    loaded, _ = local_engine.ok(
        "load", {"model": str(preset_dir), "quant": "fp32", "device": "cpu", "backend": backend}
    )
    assert loaded["backend"] == class_name
    rows = [{"index": 10 + i, "text": t} for i, t in enumerate(TEXTS)]
    result, _ = local_engine.ok(
        "score", {"rows": rows, "max_length": max_length, "stride": stride, "add_bos": add_bos, "token_budget": 300}
    )
    ref = reference_scores(preset_dir, TEXTS, max_length, stride, add_bos)
    got = result["rows"]
    assert [r["index"] for r in got] == [r["index"] for r in rows]
    if max_length < 512:
        assert max(r["n_windows"] for r in got) > 2, "the long text must span several windows"
    for g, r, text in zip(got, ref, TEXTS, strict=True):
        assert g["n_tokens"] == r["n_tokens"]
        assert g["n_scored_tokens"] == r["n_scored_tokens"]
        assert g["n_windows"] == r["n_windows"]
        assert g["n_bytes"] == len(text.encode("utf-8"))
        assert g["nll_sum"] == pytest.approx(r["nll_sum"], rel=RTOL)
    total_got = sum(g["nll_sum"] for g in got)
    total_ref = sum(r["nll_sum"] for r in ref)
    assert total_got == pytest.approx(total_ref, rel=RTOL)
    # Perplexity and bits per byte follow from the same sums.
    n_tok = sum(g["n_scored_tokens"] for g in got)
    n_bytes = sum(g["n_bytes"] for g in got)
    assert math.exp(total_got / n_tok) == pytest.approx(math.exp(total_ref / n_tok), rel=1e-4)
    assert total_got / (n_bytes * math.log(2)) == pytest.approx(total_ref / (n_bytes * math.log(2)), rel=RTOL)
    if add_bos:
        assert all(g["n_scored_tokens"] == g["n_tokens"] for g in got)
