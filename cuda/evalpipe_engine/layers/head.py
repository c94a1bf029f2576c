"""The LM head without waste: log p(target) per position, computed in row chunks so that full-vocabulary float32
logits never exist for more than `chunk_rows` positions at once (a 16384-token row at vocab 49152 would otherwise
need 3.2 GB of float32 logits; a 2048-row chunk needs 0.4 GB)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..invariant import invariant_linear, invariant_rows
from ..kernels.gemv_cuda import gemv

DEFAULT_CHUNK_ROWS = 2048


def _logsumexp(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits, dim=-1)


def chunk_rows_for(vocab_size: int, budget_bytes: int = 512 * 2**20) -> int:
    """Rows per chunk so that one chunk's float32 logits stay under `budget_bytes` (at least 16 rows)."""
    return max(16, min(DEFAULT_CHUNK_ROWS * 4, budget_bytes // (4 * max(vocab_size, 1))))


def target_logprobs_chunked(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk_rows: int | None = None,
    fixed_rows: bool = False,
) -> torch.Tensor:
    """hidden [M, H] (already final-normed), targets [M] int64 -> float32 [M] of log softmax(head(h))[target].

    Each chunk's logits are computed in the head's dtype and reduced to logsumexp and the target logit in float32
    (as HF's upcast-then-log-softmax), then dropped before the next chunk. On CUDA the reduction is one fused
    Triton pass over the chunk (no float32 copy); on CPU it is the plain PyTorch upcast. With `fixed_rows` (the
    deterministic mode) the CPU reduction runs on fixed-shape row tiles, so a row's value never depends on how many
    rows share its chunk (invariant.py); the CUDA kernel is one program per row already."""
    if hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"target_logprobs_chunked: {hidden.shape[0]} hidden rows but {targets.shape[0]} targets")
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    if hidden.shape[0] == 0:
        return out
    rows = chunk_rows or DEFAULT_CHUNK_ROWS
    fused = hidden.device.type == "cuda"
    for a in range(0, hidden.shape[0], rows):
        b = min(a + rows, hidden.shape[0])
        if fused:  # one Triton pass over the chunk's logits in their own dtype (kernels/logsumexp.py)
            from ..kernels.logsumexp import lse_target

            lse_target(head(hidden[a:b]), targets[a:b], out=out[a:b])
            continue
        logits = head(hidden[a:b]).float()
        lse = invariant_rows(logits, _logsumexp) if fixed_rows else _logsumexp(logits)
        tgt = logits.gather(1, targets[a:b, None]).squeeze(1)
        out[a:b] = tgt - lse
        del logits
    return out


class LMHead:
    """The output projection: hidden [M, H] -> logits [M, vocab] in the activation dtype, dense (never quantized).
    `weight` is the embedding matrix itself for tied embeddings. In the deterministic mode the product runs on
    batch-invariant fixed shapes (invariant.py)."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.deterministic = False
        self.cuda_rtc: bool | None = None  # the cuda_rtc fast-path switch: one row through the CUDA GEMV

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if self.deterministic:
            return invariant_linear(h, self.weight, None)
        y = gemv("dense", h, self.weight, None, None, rtc=self.cuda_rtc)  # None unless one CUDA row
        return torch.nn.functional.linear(h, self.weight) if y is None else y
