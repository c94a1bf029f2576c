"""Residual add fused with the next LayerNorm (Triton): x <- x + y (rounded to x's dtype, as HF's `residual +
hidden`), h = LayerNorm(x) * w + b computed in float32 from the rounded sum and stored in x's dtype. One pass
instead of an add kernel plus a norm kernel (two fewer reads/writes of the [N, hidden] stream per call)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def add_layernorm_row(X, Y, W, B, row, n_cols, stride_x, stride_y, eps, BLOCK: tl.constexpr):
    """One row: x <- x + y (stored, rounded to x's dtype), then LayerNorm of the rounded sum in float32, returned
    rounded to x's dtype (masked lanes hold 0), with the lane offsets and mask. Shared by this kernel and the
    fused quantizing one (fused_quant.py), so both compute the same bits."""
    offs = tl.arange(0, BLOCK)
    ok = offs < n_cols
    x = tl.load(X + row * stride_x + offs, mask=ok, other=0.0)
    y = tl.load(Y + row * stride_y + offs, mask=ok, other=0.0)
    s = (x.to(tl.float32) + y.to(tl.float32)).to(x.dtype)
    tl.store(X + row * stride_x + offs, s, mask=ok)
    v = s.to(tl.float32)
    mean = tl.sum(v, 0) / n_cols
    d = tl.where(ok, v - mean, 0.0)
    var = tl.sum(d * d, 0) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(W + offs, mask=ok, other=0.0).to(tl.float32)
    b = tl.load(B + offs, mask=ok, other=0.0).to(tl.float32)
    return (d * rstd * w + b).to(x.dtype), offs, ok


@triton.jit
def _add_ln_kernel(X, Y, W, B, H, n_cols, stride_x, stride_y, stride_h, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    h, offs, ok = add_layernorm_row(X, Y, W, B, row, n_cols, stride_x, stride_y, eps, BLOCK)
    tl.store(H + row * stride_h + offs, h, mask=ok)


def row_kernel_warps(block: int, device: torch.device) -> int:
    """Warps for a one-row-per-program kernel over `block` lanes (one warp in the CPU interpreter). The fused
    quantizing LayerNorm uses the same count: the same reduction order, so the same bits."""
    if device.type != "cuda":
        return 1
    return 4 if block <= 2048 else 8 if block <= 8192 else 16


def add_layernorm_(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """x [N, C] updated in place to x + y; returns LayerNorm(x) [N, C]."""
    n, c = x.shape
    if y.shape != x.shape or x.stride(1) != 1 or y.stride(1) != 1:
        raise ValueError(f"add_layernorm_: x {tuple(x.shape)} and y {tuple(y.shape)} must match, rows contiguous")
    h = torch.empty_like(x)
    block = triton.next_power_of_2(c)
    warps = row_kernel_warps(block, x.device)
    _add_ln_kernel[(n,)](x, y, weight, bias, h, c, x.stride(0), y.stride(0), h.stride(0), eps, BLOCK=block,
                         num_warps=warps)  # fmt: skip
    return h
