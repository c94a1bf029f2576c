"""The deterministic (batch-invariant) mode: a row's logits and a sample's tokens are bitwise the same whatever else
is in its pack or batch, whatever the batch size, run after run (docs/determinism.md).

What breaks that in the fast path, and what this mode does instead:

- Matmuls. MKL (CPU) and cuBLAS (CUDA) pick kernels by the number of rows M: on CPU an M = 1 product is a GEMV and
  M = 2, 3, 5, 7, 9 get other kernels than M = 16, and each sums K in another order (measured: docs/determinism.md).
  Here every product runs on fixed shapes: on CPU in tiles of TILE_ROWS rows (the last one zero-padded), each an
  MKL call of the same shape; on CUDA cuBLAS calls of exactly PREFILL_ROWS (prefill) or DECODE_ROWS (decode steps)
  rows, so cuBLAS picks one algorithm for every chunk, and for 8-bit weights in decode steps
  kernels/invariant_matmul.py (one tile config for every M, a split of K fixed by K). fp8 and nf4 compute their
  weight-only function (x @ dequant(W).T + b) for every M instead of switching to activation quantization above
  small_m_max rows; int8 keeps its W8A8 product in prefill for every M (exact int32 sums) and decodes weight-only.
- Fusions that exist only for some M (cuBLAS GELU epilogue, fp8 fused quantization) are off.
- Decode attention uses a fixed number of KV splits (not one chosen from the batch size); on CPU each row attends
  over exactly its own positions.
- The LM head's log-softmax and the sampler work on fixed-shape rows.
- CPU run-to-run: MKL is asked for conditional numerical reproducibility (MKL_CBWR, MKL_DYNAMIC=FALSE, set by the
  package's `__init__` before torch loads MKL), so thread scheduling and alignment cannot change its results.

The phase matters on CUDA: prefill and scoring use one chunk size, decode steps another (and the split-K kernel for
8-bit weights). Each is batch-invariant on its own; the decoder marks its steps with `decode_phase()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

TILE_ROWS = 16  # CPU: rows per fixed-shape MKL call
PREFILL_ROWS = 2048  # CUDA prefill/scoring: rows per fixed-shape cuBLAS call (192 tiles of 3B's 3072-wide layers)
DECODE_ROWS = 64  # CUDA decode steps: rows per fixed-shape call (a batch of 1 to 64 costs one weight read)


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


def fixed_shape_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, rows: int) -> torch.Tensor:
    """F.linear over x [M, K] as calls of exactly `rows` rows each (the last chunk zero-padded): cuBLAS then sees
    one shape, so it picks one algorithm, one tile and one split of K for every chunk, and a row's sum is the same
    whatever M is and whatever the other rows hold."""
    m, k = x.shape
    pad = -m % rows
    if pad:
        x = torch.cat([x, x.new_zeros((pad, k))])
    out = torch.empty((m + pad, weight.shape[0]), dtype=x.dtype, device=x.device)
    for a in range(0, m + pad, rows):  # written in place: one GEMM launch per chunk, no copy
        if bias is None:
            torch.mm(x[a : a + rows], weight.t(), out=out[a : a + rows])
        else:
            torch.addmm(bias, x[a : a + rows], weight.t(), out=out[a : a + rows])
    return out[:m]


def invariant_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """x [..., K] @ weight[N, K].T + bias with every row independent of the others and of M (x's dtype out).
    `scale` (CUDA): weight is int8/fp8 with this fp32 scale per output channel.

    CUDA: prefill products in fixed chunks of PREFILL_ROWS rows through cuBLAS; decode steps in chunks of DECODE_ROWS
    (cuBLAS costs the same at 1 and 64 rows: the weight read dominates), or for an 8-bit weight the split-K Triton
    kernel that reads it as stored (kernels/invariant_matmul.py). CPU: MKL in chunks of TILE_ROWS rows."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    if x2.is_cuda:
        if scale is not None and _PHASE.decode:
            from .kernels.invariant_matmul import matmul_rows_split

            y = matmul_rows_split(x2, weight.contiguous(), bias, scale)
        else:
            if scale is not None:  # prefill: one dequantized copy per product, amortised over its many rows
                weight = weight.to(x2.dtype) * scale.to(x2.dtype)[:, None]
            y = fixed_shape_linear(x2, weight, bias, DECODE_ROWS if _PHASE.decode else PREFILL_ROWS)
    else:
        if scale is not None:
            raise ValueError("invariant_linear: a scaled int8/fp8 weight is the CUDA path; dequantize it on CPU")
        y = fixed_shape_linear(x2, weight, bias, TILE_ROWS)
    return y.reshape(*lead, weight.shape[0])


def invariant_rows(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """A row-wise reduction (log-softmax, logsumexp) on fixed-shape tiles on CPU, where PyTorch's reduction strategy
    changes with the number of rows; on CUDA our row kernels already are one program per row."""
    return fn(x) if x.is_cuda else in_fixed_tiles(x, fn)
