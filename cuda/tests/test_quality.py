"""KL divergence of next-token distributions against a reference, and per-mode KL on a random stack."""

from __future__ import annotations

import math

import pytest
import torch

from evalpipe_engine.devtools.quality import StackShape, logit_deltas, next_token_kl, random_stack_kl


def test_kl_is_zero_for_equal_and_matches_the_definition() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 11, generator=g), torch.randn(5, 11, generator=g)
    assert torch.allclose(next_token_kl(a, a), torch.zeros(5), atol=1e-6)
    assert torch.allclose(next_token_kl(a, a + 3.0), torch.zeros(5), atol=1e-5)  # shift-invariant
    p, q = torch.softmax(a, -1), torch.softmax(b, -1)
    manual = (p * (p.log() - q.log())).sum(-1)
    assert torch.allclose(next_token_kl(a, b), manual, atol=1e-6)
    assert torch.all(next_token_kl(a, b) > 0)


def test_kl_of_two_point_distribution() -> None:
    ref = torch.tensor([[0.0, 0.0]])  # p = (1/2, 1/2)
    test = torch.tensor([[math.log(3.0), 0.0]])  # q = (3/4, 1/4)
    expect = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert next_token_kl(ref, test).item() == pytest.approx(expect, rel=1e-6)


def test_kl_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[3, 4\] and \[3, 5\]"):
        next_token_kl(torch.zeros(3, 4), torch.zeros(3, 5))


def test_logit_deltas() -> None:
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
    b = a.clone()
    b[1, 0] = 9.0
    d = logit_deltas(a, b)
    assert d["max_abs"] == 9.0 and d["top1_agreement"] == 0.5


def test_random_stack_kl_orders_the_modes() -> None:
    shape = StackShape(hidden=128, ffn=512, layers=3, vocab=500)
    res = random_stack_kl(["fp32", "fp16", "int8", "fp8", "nf4"], reference="fp32", shape=shape, rows=32, seq=4)
    assert set(res) == {"fp32", "fp16", "int8", "fp8", "nf4"}
    assert res["fp32"]["kl_mean"] == 0.0 and res["fp32"]["top1_agreement"] == 1.0
    # 16-bit floats < 8-bit integers (per channel) < 4-bit NF4; every quantized mode still agrees mostly on top-1
    assert res["fp16"]["kl_mean"] < res["int8"]["kl_mean"] < res["nf4"]["kl_mean"]
    assert res["int8"]["kl_mean"] < res["fp8"]["kl_mean"] < res["nf4"]["kl_mean"]
    assert res["nf4"]["kl_mean"] < 0.5 and res["nf4"]["top1_agreement"] > 0.5
    for mode in ("int8", "fp8", "nf4"):
        assert res[mode]["kl_mean"] > 0.0


def test_random_stack_kl_against_bf16_defaults() -> None:
    res = random_stack_kl(["int8", "nf4"], shape=StackShape(hidden=64, ffn=256, layers=2, vocab=200), rows=8, seq=2)
    assert set(res) == {"int8", "nf4"}
    assert all(math.isfinite(v["kl_mean"]) for v in res.values())
