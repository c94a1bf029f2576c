"""Residual add fused with the next RMSNorm (Triton), with HF LlamaRMSNorm's rounding: x <- x + y (rounded to x's
dtype, as HF's `residual + hidden`), then h = (x * rsqrt(mean(x^2) + eps)) computed in float32 and rounded to x's
dtype, then weight * h rounded to x's dtype. One program per row (batch-invariant: a row's result never depends
on the other rows). `rmsnorm` is the same without the add (layer 0's input norm)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .add_layernorm import row_kernel_warps


@triton.jit
def _add_rms_kernel(X, Y, W, H, n_cols, stride_x, stride_y, stride_h, eps, HAS_Y: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    ok = offs < n_cols
    x = tl.load(X + row * stride_x + offs, mask=ok, other=0.0)
    if HAS_Y:
        y = tl.load(Y + row * stride_y + offs, mask=ok, other=0.0)
        s = (x.to(tl.float32) + y.to(tl.float32)).to(x.dtype)
        tl.store(X + row * stride_x + offs, s, mask=ok)
    else:
        s = x
    v = s.to(tl.float32)
    var = tl.sum(v * v, 0) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)
    h = (v * rstd).to(x.dtype)
    w = tl.load(W + offs, mask=ok, other=0.0)
    out = (w.to(tl.float32) * h.to(tl.float32)).to(x.dtype)
    tl.store(H + row * stride_h + offs, out, mask=ok)


def _launch(x: torch.Tensor, y: torch.Tensor | None, weight: torch.Tensor, eps: float) -> torch.Tensor:
    n, c = x.shape
    if x.stride(1) != 1 or (y is not None and (y.shape != x.shape or y.stride(1) != 1)):
        raise ValueError("add_rmsnorm_: x and y must match, rows contiguous")
    h = torch.empty_like(x)
    block = triton.next_power_of_2(c)
    warps = row_kernel_warps(block, x.device)
    other = x if y is None else y
    _add_rms_kernel[(n,)](x, other, weight, h, c, x.stride(0), other.stride(0), h.stride(0), eps,
                          HAS_Y=y is not None, BLOCK=block, num_warps=warps)  # fmt: skip
    return h


def add_rmsnorm_(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x [N, C] updated in place to x + y; returns RMSNorm(x) [N, C]."""
    return _launch(x, y, weight, eps)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm(x) [N, C], x unchanged."""
    return _launch(x, None, weight, eps)
