"""Large-M (prefill) W8A8 GEMM on the int8 tensor cores: y[m, n] = (qx[m] . qw[n]) * sx[m] * sw[n] + b[n].

qx int8 [M, K] with per-token scales sx [M] (quant_act.quantize_rows), qw int8 [N, K] with per-output-channel
scales sw [N]; int32 accumulation is exact, the scales and bias are applied in the epilogue and the output is
written once in the activation dtype. This is LLM.int8()'s vector-wise quantization; its outlier decomposition
is done by the caller (quant/int8.py). Tiles are swizzled in groups of GROUP_M rows for L2 reuse. Any M, N, K
(masked tails; K is read in BLOCK_K steps with a masked last step).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _w8a8_kernel(
    a_ptr,
    b_ptr,
    sa_ptr,
    sb_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_am,
    stride_bn,
    stride_om,
    N_BUCKET,  # autotune key only: next power of two of N
    K_BUCKET,  # autotune key only: next power of two of K
    HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % size_m
    pid_n = (pid % group) // size_m
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :]
    b_ptrs = b_ptr + offs_n[None, :] * stride_bn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k0 in range(0, K, BLOCK_K):
        k_mask = (k0 + offs_k) < K
        a = tl.load(a_ptrs, mask=(offs_m < M)[:, None] & k_mask[None, :], other=0)
        b = tl.load(b_ptrs, mask=k_mask[:, None] & (offs_n < N)[None, :], other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    sa = tl.load(sa_ptr + offs_m, mask=offs_m < M, other=0.0)
    sb = tl.load(sb_ptr + offs_n, mask=offs_n < N, other=0.0)
    y = acc.to(tl.float32) * sa[:, None] * sb[None, :]
    if HAS_BIAS:
        y += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in [
        (128, 256, 128, 8, 3),
        (128, 128, 128, 8, 4),
        (256, 128, 128, 8, 3),
        (128, 256, 64, 8, 4),
    ]
]
_tuned = triton.autotune(_CONFIGS, key=["N_BUCKET", "K_BUCKET"])(_w8a8_kernel)


def w8a8_linear(
    qx: torch.Tensor,
    sx: torch.Tensor,
    qw: torch.Tensor,
    sw: torch.Tensor,
    bias: torch.Tensor | None,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """qx int8 [M, K], sx fp32 [M] or [M, 1], qw int8 [N, K], sw fp32 [N] -> [M, N] of out_dtype."""
    m, k = qx.shape
    n = qw.shape[0]
    out = torch.empty((m, n), device=qx.device, dtype=out_dtype)
    args = (
        qx,
        qw,
        sx,
        sw,
        bias if bias is not None else sw,
        out,
        m,
        n,
        k,
        qx.stride(0),
        qw.stride(0),
        out.stride(0),
        triton.next_power_of_2(n),
        triton.next_power_of_2(k),
    )
    if qx.is_cuda:

        def grid(meta: dict[str, int]) -> tuple[int]:
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

        _tuned[grid](*args, HAS_BIAS=bias is not None)
    else:
        bm, bn, bk = 16, 16, 32
        _w8a8_kernel[(triton.cdiv(m, bm) * triton.cdiv(n, bn),)](
            *args, HAS_BIAS=bias is not None, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=2
        )
    return out
