"""NF4 -> dense dequantization for the large-M (prefill) path: W = code[q] * absmax[block], written once as
bf16/fp16/fp32 [N, K] so the matrix product can run on cuBLAS tensor cores. Reads 0.5 + 4/64 bytes per weight and
writes 2 (or 4); for M in the thousands that is a few percent of the matrix product's time (see
docs/quantization.md). Same storage layout as nf4_smallm.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _nf4_dequant_kernel(
    w_ptr,
    absmax_ptr,
    code_ptr,
    out_ptr,
    N,
    K,
    KB,
    stride_wn,
    stride_an,
    stride_on,
    BLOCK_N: tl.constexpr,
    BLOCK_KB: tl.constexpr,
):
    NBLK: tl.constexpr = BLOCK_KB // 32
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    kb0 = tl.program_id(1) * BLOCK_KB
    blk = tl.arange(0, NBLK)
    j = tl.arange(0, 32)
    n_mask = offs_n < N
    b2 = kb0 + blk[:, None] * 32 + j[None, :]
    byte = tl.load(
        w_ptr + offs_n[:, None, None] * stride_wn + b2[None, :, :],
        mask=n_mask[:, None, None] & (b2 < KB)[None],
        other=0,
    ).to(tl.int32)
    a = tl.load(
        absmax_ptr + offs_n[:, None] * stride_an + (kb0 // 32 + blk)[None, :],
        mask=n_mask[:, None] & ((kb0 + blk * 32) < KB)[None, :],
        other=0.0,
    )[:, :, None]
    hi = tl.load(code_ptr + (byte >> 4)) * a
    lo = tl.load(code_ptr + (byte & 15)) * a
    vals = tl.reshape(tl.join(hi, lo), (BLOCK_N, 2 * BLOCK_KB))
    offs_k = 2 * kb0 + tl.arange(0, 2 * BLOCK_KB)
    tl.store(
        out_ptr + offs_n[:, None] * stride_on + offs_k[None, :],
        vals.to(out_ptr.dtype.element_ty),
        mask=n_mask[:, None] & (offs_k < K)[None, :],
    )


def nf4_dequantize(
    packed: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor, k: int, dtype: torch.dtype
) -> torch.Tensor:
    """packed uint8 [N, Kp/2], absmax fp32 [N, Kp/64], code fp32 [16] -> dense [N, k] of `dtype`."""
    n, kb = packed.shape
    if kb * 2 < k or kb % 32 != 0:
        raise ValueError(f"packed nf4 weight [{n}, {kb}] does not cover K={k} in 64-element blocks")
    out = torch.empty((n, k), device=packed.device, dtype=dtype)
    bn, bkb, warps = (16, 128, 4) if packed.is_cuda else (4, 32, 1)
    grid = (triton.cdiv(n, bn), triton.cdiv(kb, bkb))
    _nf4_dequant_kernel[grid](
        packed,
        absmax,
        code,
        out,
        n,
        k,
        kb,
        packed.stride(0),
        absmax.stride(0),
        out.stride(0),
        BLOCK_N=bn,
        BLOCK_KB=bkb,
        num_warps=warps,
    )
    return out
