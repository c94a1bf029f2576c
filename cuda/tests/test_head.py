"""The chunked LM head gives exactly the log-softmax of the full logits, whatever the chunking."""

from __future__ import annotations

import pytest
import torch

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
