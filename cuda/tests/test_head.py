"""The chunked LM head gives exactly the log-softmax of the full logits, whatever the chunking."""

from __future__ import annotations

import pytest
import torch
from _interpreter import run_interpreted

from evalpipe_engine.head import chunk_rows_for, target_logprobs_chunked


@pytest.mark.parametrize("chunk", [1, 5, 64, 1000])
def test_chunked_head_equals_full_log_softmax(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(77, 32, generator=g)
    weight = torch.randn(301, 32, generator=g)
    targets = torch.randint(0, 301, (77,), generator=g)
    calls: list[int] = []

    def head(h: torch.Tensor) -> torch.Tensor:
        calls.append(h.shape[0])
        return h @ weight.T

    got = target_logprobs_chunked(hidden, targets, head, chunk_rows=chunk)
    ref = torch.log_softmax((hidden @ weight.T).double(), -1).gather(1, targets[:, None]).squeeze(1)
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), ref, atol=1e-5)
    assert max(calls) <= chunk and sum(calls) == 77  # never more than `chunk` rows of logits at once


def test_chunk_budget_bounds_memory() -> None:
    rows = chunk_rows_for(49152)
    assert rows * 49152 * 4 <= 512 * 2**20
    assert chunk_rows_for(10) >= 16


def test_mismatched_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="3 hidden rows but 2 targets"):
        target_logprobs_chunked(torch.zeros(3, 4), torch.zeros(2, dtype=torch.int64), lambda h: h)


_INTERPRETED = """
import torch
from evalpipe_engine.kernels.logsumexp import lse_target
g = torch.Generator().manual_seed(1)
for dt in (torch.float32, torch.bfloat16):
    x = (torch.randn(37, 301, generator=g) * 5).to(dt)
    x[3] = -1e4
    t = torch.randint(0, 301, (37,), generator=g)
    got = lse_target(x, t)
    ref = torch.log_softmax(x.double(), -1).gather(1, t[:, None]).squeeze(1)
    err = (got.double() - ref).abs().max().item()
    assert err < 1e-5, (dt, err)
    print("ok", dt, err)
"""


def test_fused_lse_kernel_in_interpreter() -> None:
    res = run_interpreted(["-c", _INTERPRETED], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("ok") == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fused_head_on_gpu_matches_float64() -> None:
    g = torch.Generator(device="cuda").manual_seed(2)
    hidden = torch.randn(3000, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    weight = torch.randn(49152, 512, device="cuda", dtype=torch.bfloat16, generator=g) * 0.05
    targets = torch.randint(0, 49152, (3000,), device="cuda", generator=g)
    got = target_logprobs_chunked(hidden, targets, lambda h: h @ weight.T, chunk_rows=1024)
    logits = (hidden @ weight.T).double()  # the same bf16 logits, reduced in float64
    ref = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    assert (got.double() - ref).abs().max().item() < 1e-4
