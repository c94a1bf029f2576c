"""The deterministic (batch-invariant) mode: a row's logits and a sample's tokens are bitwise the same whatever else
is in its pack or batch, whatever the batch size, run after run (docs/determinism.md).

What breaks that in the fast path, and what this mode does instead:

- Matmuls. MKL (CPU) and cuBLAS (CUDA) pick kernels by the number of rows M: on CPU an M = 1 product is a GEMV and
  M = 2, 3, 5, 7, 9 get other kernels than M = 16, and each sums K in another order (measured: docs/determinism.md).
  Here every product runs on fixed shapes: on CPU in tiles of TILE_ROWS rows (the last one zero-padded), each an
  MKL call of the same shape; on CUDA through kernels/invariant_matmul.py (one tile config for every M, no
  split-K that depends on M). Quantized modes compute their weight-only function (x @ dequant(W).T + b) for every
  M, instead of switching to activation quantization above small_m_max rows.
- Fusions that exist only for some M (cuBLAS GELU epilogue, fp8 fused quantization) are off.
- Decode attention uses a fixed number of KV splits (not one chosen from the batch size); on CPU each row attends
  over exactly its own positions.
- The LM head's log-softmax and the sampler work on fixed-shape rows.
- CPU run-to-run: MKL is asked for conditional numerical reproducibility (MKL_CBWR, MKL_DYNAMIC=FALSE, set by
  `__main__` before torch loads MKL), so thread scheduling and alignment cannot change its results.

The phase matters on CUDA: prefill and scoring use `matmul_rows`, decode steps `matmul_rows_split` (fast for a few
rows). Each is batch-invariant on its own; the decoder marks its steps with `decode_phase()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

TILE_ROWS = 16  # CPU: rows per fixed-shape MKL call


class _Phase:
    decode = False


_PHASE = _Phase()


@contextlib.contextmanager
def decode_phase() -> Iterator[None]:
    """Mark the products made inside as decode-step products (CUDA: the split-K invariant kernel)."""
    old = _PHASE.decode
    _PHASE.decode = True
    try:
        yield
    finally:
        _PHASE.decode = old


def in_decode_phase() -> bool:
    return _PHASE.decode


def in_fixed_tiles(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], tile: int = TILE_ROWS) -> torch.Tensor:
    """fn applied to x [M, ...] in tiles of exactly `tile` rows (the last zero-padded), rows concatenated back: fn
    always sees the same shape, so a row's result depends on the row alone."""
    m = x.shape[0]
    if m == 0:
        return fn(x.new_zeros((tile, *x.shape[1:])))[:0]
    pad = -m % tile
    if pad:
        x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
    parts = [fn(x[a : a + tile]) for a in range(0, x.shape[0], tile)]
    return torch.cat(parts)[:m]


def invariant_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x [..., K] @ weight[N, K].T + bias with every row independent of the others and of M (x's dtype out)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if x2.is_cuda:
        from .kernels.invariant_matmul import matmul_rows, matmul_rows_split

        kernel = matmul_rows_split if _PHASE.decode else matmul_rows
        y = kernel(x2.contiguous(), weight.contiguous(), bias)
    else:
        y = in_fixed_tiles(x2.contiguous(), lambda t: F.linear(t, weight, bias))
    return y.reshape(*lead, weight.shape[0])


def invariant_rows(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """A row-wise reduction (log-softmax, logsumexp) on fixed-shape tiles on CPU, where PyTorch's reduction strategy
    changes with the number of rows; on CUDA our row kernels already are one program per row."""
    return fn(x) if x.is_cuda else in_fixed_tiles(x, fn)
