"""int8 -> dense dequantization for the large-M (prefill) weight-only path: W = q * s[n], written once as
bf16/fp16/fp32 [N, K] so the matrix product runs on cuBLAS tensor cores. Reads 1 byte per weight, writes 2."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _int8_dequant_kernel(
    q_ptr, scale_ptr, out_ptr, N, K, stride_qn, stride_on, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr
):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    mask = (offs_n < N)[:, None] & (offs_k < K)[None, :]
    q = tl.load(q_ptr + offs_n[:, None] * stride_qn + offs_k[None, :], mask=mask, other=0).to(tl.float32)
    s = tl.load(scale_ptr + offs_n, mask=offs_n < N, other=0.0)
    tl.store(
        out_ptr + offs_n[:, None] * stride_on + offs_k[None, :],
        (q * s[:, None]).to(out_ptr.dtype.element_ty),
        mask=mask,
    )


def int8_dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q int8 [N, K], scale fp32 [N] -> dense [N, K] of `dtype`."""
    n, k = q.shape
    out = torch.empty((n, k), device=q.device, dtype=dtype)
    bn, bk, warps = (32, 256, 8) if q.is_cuda else (8, 32, 1)
    grid = (triton.cdiv(n, bn), triton.cdiv(k, bk))
    _int8_dequant_kernel[grid](q, scale, out, n, k, q.stride(0), out.stride(0), BLOCK_N=bn, BLOCK_K=bk, num_warps=warps)
    return out
