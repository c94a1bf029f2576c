"""Dynamic per-token (per-row) activation quantization for the W8A8 paths: s[m] = max_k |x[m, k]| / QMAX,
q = round(x / s) as int8 (QMAX 127, round half away from zero) or fp8 E4M3 (QMAX 448, round to nearest even).
A row of zeros gets s = 1. One program per row; the row is read once and written once.

`scale_row` is that rule as a Triton function: kernels/fused_quant.py applies it to the row it has just computed
(LayerNorm, GELU), so a fused producer and `quantize_rows` quantize a row bit for bit alike."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def scale_row(x, QMAX: tl.constexpr, TO_INT8: tl.constexpr):
    """x: one row in fp32 (masked lanes 0) -> (x / s rounded for int8 and clamped to +-QMAX, still fp32; s).
    The caller casts the first to the stored dtype (fp8's cast rounds to nearest even)."""
    amax = tl.max(tl.abs(x), axis=0)
    s = tl.where(amax > 0, amax / QMAX, 1.0)
    v = x / s
    if TO_INT8:
        v = tl.where(v >= 0, tl.floor(v + 0.5), -tl.floor(-v + 0.5))
    return tl.minimum(tl.maximum(v, -QMAX), QMAX), s


@triton.jit
def _quant_rows_kernel(
    x_ptr, q_ptr, s_ptr, K, stride_xm, stride_qm, QMAX: tl.constexpr, TO_INT8: tl.constexpr, BLOCK_K: tl.constexpr
):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK_K)
    mask = offs < K
    x = tl.load(x_ptr + row * stride_xm + offs, mask=mask, other=0.0).to(tl.float32)
    v, s = scale_row(x, QMAX, TO_INT8)
    tl.store(q_ptr + row * stride_qm + offs, v.to(q_ptr.dtype.element_ty), mask=mask)
    tl.store(s_ptr + row, s)


QMAX = {torch.int8: 127.0, torch.float8_e4m3fn: 448.0}


def quantize_rows(x: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (q [M, K] of `dtype` (int8 or float8_e4m3fn), s [M, 1] fp32) with x ~= q * s."""
    if dtype not in QMAX:
        raise ValueError(f"quantize_rows: unsupported target dtype {dtype}")
    m, k = x.shape
    if x.stride(1) != 1:
        x = x.contiguous()
    q = torch.empty((m, k), device=x.device, dtype=dtype)
    s = torch.empty((m, 1), device=x.device, dtype=torch.float32)
    block = triton.next_power_of_2(k)
    warps = 1 if not x.is_cuda else (4 if block <= 4096 else 8 if block <= 8192 else 16)
    _quant_rows_kernel[(m,)](
        x,
        q,
        s,
        k,
        x.stride(0),
        q.stride(0),
        QMAX=QMAX[dtype],
        TO_INT8=dtype == torch.int8,
        BLOCK_K=block,
        num_warps=warps,
    )
    return q, s


def quantize_rows_reference(x: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The same function in plain PyTorch (fp32 math)."""
    xf = x.float()
    amax = xf.abs().amax(dim=1, keepdim=True)
    qmax = QMAX[dtype]
    s = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    v = xf / s
    if dtype == torch.int8:
        r = torch.sign(v) * torch.floor(v.abs() + 0.5)
        return r.clamp(-qmax, qmax).to(torch.int8), s
    return v.clamp(-qmax, qmax).to(dtype), s
