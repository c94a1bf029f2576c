"""`windowing: "lm-eval"` scores as lm-evaluation-harness's rolling loglikelihood, checked without the harness.

The reference here is written from the harness's documented algorithm (lm_eval.utils.get_rolling_token_windows
with context_len=1 and max_seq_len = max_length, then make_disjoint_window, then HFLM's forward on
(context + continuation)[:-1], scoring the last len(continuation) logits) and shares no code with scoring.py:

- the first window's input is [prefix] + text[:max_length - 1] and it predicts text[:max_length];
- each next window predicts the next min(max_length, left) tokens, its input the max_length tokens before its
  last prediction (so the last window is right-aligned, its overlap kept as context);
- the prefix is lm-eval's prefix_token_id for HF models: the tokenizer's BOS, else its EOS.

The reference windows are first checked against the harness's own published example (tests/test_utils.py,
test_get_rolling_token_windows_v1: 34 tokens, max_seq_len 10), then run on HF transformers (fp32, eager attention,
CPU, each window alone) and compared per row with the engine on texts several windows long and shorter than one.
Tolerance: |delta NLL| <= 1e-5 nats per scored token of the row (fp32 log-probs summed in float64), and the
token and window counts exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import EngineProcess

from evalpipe_engine.scoring import plan_lm_eval_windows

PER_TOKEN_TOL = 1e-5

TEXTS = [
    'def add(a, b):\n    """Add two numbers."""\n    return a + b\n',
    "print('hello, world')",
    "naïve café — ünïcödé ✓ 数字\n",
    "import json\n\n\ndef load(path):\n    with open(path) as fh:\n        return json.load(fh)\n" * 12,
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
    "    def push(self, x):\n        self.items.append(x)\n" * 5,
]


def reference_windows(tokens: list[int], prefix: int, max_seq_len: int) -> list[tuple[list[int], list[int]]]:
    """(model input, predicted tokens) per window, lm-eval's rolling windows with context_len=1 after
    make_disjoint_window (the input is (context + continuation)[:-1])."""
    if not tokens:
        return []
    windows: list[tuple[list[int], list[int]]] = []
    first = min(max_seq_len, len(tokens))
    windows.append(([prefix, *tokens[: first - 1]], tokens[:first]))
    done = first
    while done < len(tokens):
        n_pred = min(max_seq_len, len(tokens) - done)
        stop = done + n_pred  # the window predicts tokens[done:stop] ...
        model_input = tokens[stop - 1 - max_seq_len : stop - 1]  # ... from the max_seq_len tokens before its last
        windows.append((model_input, tokens[done:stop]))
        done = stop
    return windows


def test_reference_reproduces_the_harness_published_example() -> None:
    # lm-evaluation-harness tests/test_utils.py, test_get_rolling_token_windows_v1 (inputs shown after
    # make_disjoint_window, i.e. the tokens the model runs on).
    gold = [
        ([-100, *range(0, 9)], list(range(0, 10))),
        (list(range(9, 19)), list(range(10, 20))),
        (list(range(19, 29)), list(range(20, 30))),
        (list(range(23, 33)), list(range(30, 34))),
    ]
    assert reference_windows(list(range(34)), -100, 10) == gold


@pytest.mark.parametrize("n_text", [1, 2, 9, 10, 11, 19, 20, 21, 34, 100, 257])
@pytest.mark.parametrize("max_length", [2, 3, 10, 64])
def test_engine_plan_is_the_harness_windows(n_text: int, max_length: int) -> None:
    prefix = -1
    text = list(range(n_text))
    seq = [prefix, *text]
    ours = [(seq[begin : end - 1], seq[first:end]) for begin, end, first in plan_lm_eval_windows(n_text, max_length)]
    assert ours == reference_windows(text, prefix, max_length)
    scored = [t for _, pred in ours for t in pred]
    assert scored == text  # every text token once, in order
    assert all(len(model_input) <= max_length for model_input, _ in ours)
    if n_text > max_length:  # every window after the first runs on exactly max_length tokens (right-aligned)
        assert all(len(model_input) == max_length for model_input, _ in ours[1:])


def reference_scores(model_dir: Path, texts: list[str], max_length: int) -> list[dict]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    out = []
    for text in texts:
        tokens = tok(text, add_special_tokens=False)["input_ids"]  # HFLM.tok_encode: no special tokens
        nll, count = 0.0, 0
        windows = reference_windows(tokens, prefix, max_length)
        for model_input, pred in windows:
            with torch.no_grad():
                logits = model(torch.tensor([model_input])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)[-len(pred) :]
            nll -= float(logp.gather(-1, torch.tensor(pred)[:, None]).sum())
            count += len(pred)
        out.append({"nll_sum": nll, "n_scored_tokens": count, "n_tokens": len(tokens), "n_windows": len(windows)})
    return out


@pytest.fixture(scope="module")
def local_engine():
    proc = EngineProcess()
    yield proc
    proc.close()


def _rows(texts: list[str]) -> list[dict]:
    return [{"index": 10 + i, "text": t} for i, t in enumerate(texts)]


@pytest.mark.parametrize("backend", ["native", "hf"])
@pytest.mark.parametrize("max_length", [32, 100, 512])
def test_lm_eval_windowing_matches_the_harness_algorithm(
    local_engine: EngineProcess, preset_dir: Path, backend: str, max_length: int
) -> None:
    local_engine.ok("load", {"model": str(preset_dir), "quant": "fp32", "device": "cpu", "backend": backend})
    result, _ = local_engine.ok(
        "score", {"rows": _rows(TEXTS), "max_length": max_length, "windowing": "lm-eval", "token_budget": 300}
    )
    assert result["windowing"] == "lm-eval"
    assert result["stride"] == max_length
    ref = reference_scores(preset_dir, TEXTS, max_length)
    got = result["rows"]
    if max_length < 512:
        assert max(r["n_windows"] for r in got) > 5, "the long texts must span several windows"
    assert min(r["n_windows"] for r in got) == 1, "some rows fit one window"
    worst, worst_abs = 0.0, 0.0
    for g, r in zip(got, ref, strict=True):
        assert g["n_tokens"] == r["n_tokens"] == g["n_scored_tokens"] == r["n_scored_tokens"]
        assert g["n_windows"] == r["n_windows"]
        worst = max(worst, abs(g["nll_sum"] - r["nll_sum"]) / r["n_scored_tokens"])
        worst_abs = max(worst_abs, abs(g["nll_sum"] - r["nll_sum"]))
        assert abs(g["nll_sum"] - r["nll_sum"]) <= PER_TOKEN_TOL * r["n_scored_tokens"], (g, r)
    print(
        f"lm-eval windowing, {backend}, max_length {max_length}: "
        f"worst |dNLL| per token {worst:.2e}, per row {worst_abs:.2e}"
    )


def test_default_windowing_is_unchanged_and_differs_from_lm_eval_only_on_long_rows(
    local_engine: EngineProcess, preset_dir: Path
) -> None:
    local_engine.ok("load", {"model": str(preset_dir), "quant": "fp32", "device": "cpu"})
    params = {"rows": _rows(TEXTS), "max_length": 32, "token_budget": 300}
    default, _ = local_engine.ok("score", params)
    named, _ = local_engine.ok("score", {**params, "windowing": "evalpipe"})
    lm_eval, _ = local_engine.ok("score", {**params, "windowing": "lm-eval"})
    assert default["windowing"] == "evalpipe"
    assert default["rows"] == named["rows"]  # bit for bit
    for ours, theirs in zip(default["rows"], lm_eval["rows"], strict=True):
        assert ours["n_scored_tokens"] == theirs["n_scored_tokens"] == ours["n_tokens"]
        if ours["n_tokens"] <= 31:  # max_length - 1: both score the same single window
            assert ours["n_windows"] == theirs["n_windows"] == 1
            assert ours["nll_sum"] == pytest.approx(theirs["nll_sum"], rel=1e-6)
        else:  # the windows differ, and so does the NLL
            assert ours["n_windows"] >= theirs["n_windows"]
            assert ours["nll_sum"] != theirs["nll_sum"]


def test_a_row_of_exactly_max_length_tokens_is_one_lm_eval_window(local_engine: EngineProcess) -> None:
    local_engine.ok("load", {"model": "preset:tiny-starcoder2", "quant": "fp32", "device": "cpu"})
    probe, _ = local_engine.ok("score", {"rows": _rows(TEXTS[:1]), "max_length": 512, "windowing": "lm-eval"})
    n = probe["rows"][0]["n_tokens"]
    ours, _ = local_engine.ok("score", {"rows": _rows(TEXTS[:1]), "max_length": n})
    theirs, _ = local_engine.ok("score", {"rows": _rows(TEXTS[:1]), "max_length": n, "windowing": "lm-eval"})
    assert ours["rows"][0]["n_windows"] == 2  # our BOS takes a position: n + 1 tokens do not fit
    assert theirs["rows"][0]["n_windows"] == 1  # lm-eval runs on n tokens and scores n


def test_lm_eval_windowing_is_batch_invariant_in_the_deterministic_mode(local_engine: EngineProcess) -> None:
    loaded, _ = local_engine.ok("load", {"model": "preset:tiny-starcoder2", "quant": "fp32", "device": "cpu"})
    assert loaded["deterministic"]
    together, _ = local_engine.ok(
        "score", {"rows": _rows(TEXTS), "max_length": 48, "windowing": "lm-eval", "token_budget": 4096}
    )
    alone = [
        local_engine.ok("score", {"rows": [row], "max_length": 48, "windowing": "lm-eval", "token_budget": 1})[0][
            "rows"
        ][0]
        for row in _rows(TEXTS)
    ]
    assert together["rows"] == alone  # bit for bit, whatever the rows and windows that share a forward pass


@pytest.mark.parametrize(
    ("extra", "words"),
    [({"stride": 16}, "stride 16 does not apply to windowing lm-eval"), ({"add_bos": False}, "add_bos false")],
)
def test_lm_eval_windowing_refuses_what_it_cannot_honour(local_engine: EngineProcess, extra: dict, words: str) -> None:
    local_engine.ok("load", {"model": "preset:tiny-starcoder2", "quant": "fp32", "device": "cpu"})
    error = local_engine.error("score", {"rows": _rows(TEXTS[:1]), "max_length": 32, "windowing": "lm-eval", **extra})
    assert error["type"] == "bad_request"
    assert words in error["message"]
