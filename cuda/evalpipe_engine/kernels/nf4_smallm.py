"""Small-M (decode) GEMM for NF4 weights: y = x @ dq(W).T + b, dequantizing in registers.

Storage (see quant/nf4.py): `packed` uint8 [N, Kp/2], byte j of a row holding element 2j in its high nibble and
2j+1 in its low nibble (the bitsandbytes order); `absmax` fp32 [N, Kp/64], one scale per block of 64 elements
along K; `code` fp32 [16], the NF4 codebook. Kp is K rounded up to 64; the padding codes are never read
against real activations (x is masked to K).

Each program owns BLOCK_N output channels and walks K in tiles of BLOCK_KB bytes (= 2*BLOCK_KB elements),
viewed as [BLOCK_N, BLOCK_KB/32, 32] so one absmax per (row, 64-block) broadcasts over its 32 bytes. The
codebook lookup is a 16-entry (64-byte) table that stays in L1. The weights are read exactly once per call.
M == 1 is a GEMV with the epilogue fused (one launch); 2 <= M <= 64
uses `tl.dot` with K split SPLIT_K ways into an L2-resident fp32 buffer by atomic adds, then a cast (three
launches), as in quant_smallm.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .quant_smallm import MAX_SMALL_M, add_split_partial, block_m_for, dot_at_precision, dot_precision, quick_bench


@triton.jit
def _nf4_gemv_kernel(
    x_ptr,
    w_ptr,
    absmax_ptr,
    code_ptr,
    bias_ptr,
    out_ptr,
    N,
    K,
    KB,
    stride_xm,
    stride_wn,
    stride_an,
    stride_om,
    N_BUCKET,  # autotune key only: next power of two of N
    K_BUCKET,  # autotune key only: next power of two of K
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_KB: tl.constexpr,
):
    NBLK: tl.constexpr = BLOCK_KB // 32
    pid_n = tl.program_id(0)
    row = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < N
    blk = tl.arange(0, NBLK)
    j = tl.arange(0, 32)
    acc3 = tl.zeros((BLOCK_N, NBLK, 32), dtype=tl.float32)
    for kb0 in range(0, KB, BLOCK_KB):
        b2 = kb0 + blk[:, None] * 32 + j[None, :]  # [NBLK, 32] byte index within the row
        byte = tl.load(
            w_ptr + offs_n[:, None, None] * stride_wn + b2[None, :, :],
            mask=n_mask[:, None, None] & (b2 < KB)[None],
            other=0,
        ).to(tl.int32)
        c_hi = tl.load(code_ptr + (byte >> 4))
        c_lo = tl.load(code_ptr + (byte & 15))
        a = tl.load(
            absmax_ptr + offs_n[:, None] * stride_an + (kb0 // 32 + blk)[None, :],
            mask=n_mask[:, None] & ((kb0 + blk * 32) < KB)[None, :],
            other=0.0,
        )
        xe = tl.load(x_ptr + row * stride_xm + 2 * b2, mask=2 * b2 < K, other=0.0).to(tl.float32)
        xo = tl.load(x_ptr + row * stride_xm + 2 * b2 + 1, mask=2 * b2 + 1 < K, other=0.0).to(tl.float32)
        acc3 += (c_hi * xe[None] + c_lo * xo[None]) * a[:, :, None]
    acc = tl.sum(tl.sum(acc3, axis=2), axis=1)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * stride_om + offs_n, acc.to(out_ptr.dtype.element_ty), mask=n_mask)


@triton.jit
def _nf4_dot_kernel(
    x_ptr,
    w_ptr,
    absmax_ptr,
    code_ptr,
    bias_ptr,
    acc_ptr,
    M,
    N,
    K,
    KB,
    stride_xm,
    stride_wn,
    stride_an,
    stride_am,
    N_BUCKET,
    K_BUCKET,
    HAS_BIAS: tl.constexpr,
    DOT_PREC: tl.constexpr,  # 0: x's own 16-bit dtype, 1: tf32, 2: exact fp32 (ieee)
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_KB: tl.constexpr,
    SPLIT_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_s = tl.program_id(2)
    kb_per_split = tl.cdiv(tl.cdiv(KB, SPLIT_K), BLOCK_KB) * BLOCK_KB
    kb_begin = pid_s * kb_per_split
    kb_end = tl.minimum(kb_begin + kb_per_split, KB)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    n_mask = offs_n < N
    m_mask = offs_m < M
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb0 in range(kb_begin, kb_end, BLOCK_KB):
        bk = kb0 + tl.arange(0, BLOCK_KB)  # byte index within the row
        b_ok = bk < kb_end
        wmask = b_ok[:, None] & n_mask[None, :]
        # [BLOCK_KB, BLOCK_N] tiles, K-major, so they feed tl.dot as B without a transpose
        byte = tl.load(w_ptr + offs_n[None, :] * stride_wn + bk[:, None], mask=wmask, other=0).to(tl.int32)
        a = tl.load(absmax_ptr + offs_n[None, :] * stride_an + (bk // 32)[:, None], mask=wmask, other=0.0)
        w_hi = tl.load(code_ptr + (byte >> 4)) * a
        w_lo = tl.load(code_ptr + (byte & 15)) * a
        xm = x_ptr + offs_m[:, None] * stride_xm
        xe = tl.load(xm + 2 * bk[None, :], mask=m_mask[:, None] & (b_ok & (2 * bk < K))[None, :], other=0.0)
        xo = tl.load(xm + 2 * bk[None, :] + 1, mask=m_mask[:, None] & (b_ok & (2 * bk + 1 < K))[None, :], other=0.0)
        acc = dot_at_precision(acc, xe, w_hi, DOT_PREC)
        acc = dot_at_precision(acc, xo, w_lo, DOT_PREC)
    add_split_partial(acc, acc_ptr, bias_ptr, offs_m, offs_n, m_mask, n_mask, stride_am, pid_s, HAS_BIAS)


_GEMV_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_KB": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [(8, 256, 4, 1), (16, 256, 4, 1), (8, 512, 4, 1), (16, 512, 8, 1), (32, 256, 8, 1)]
]
_DOT_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_KB": bk, "SPLIT_K": sk}, num_warps=w, num_stages=s)
    for bn, bk, sk, w, s in [(64, 64, 4, 4, 3), (128, 64, 4, 8, 3), (64, 128, 8, 4, 2), (128, 32, 8, 4, 3)]
]
_gemv_tuned = triton.autotune(_GEMV_CONFIGS, key=["N_BUCKET", "K_BUCKET"], do_bench=quick_bench)(_nf4_gemv_kernel)
_dot_tuned = triton.autotune(
    _DOT_CONFIGS,
    key=["N_BUCKET", "K_BUCKET", "BLOCK_M", "DOT_PREC"],
    reset_to_zero=["acc_ptr"],
    do_bench=quick_bench,
)(_nf4_dot_kernel)


def nf4_smallm_linear(
    x: torch.Tensor,
    packed: torch.Tensor,
    absmax: torch.Tensor,
    code: torch.Tensor,
    bias: torch.Tensor | None,
    fp32_precision: str = "ieee",
) -> torch.Tensor:
    """x [M, K] (M <= MAX_SMALL_M); packed uint8 [N, Kp/2]; absmax fp32 [N, Kp/64]; code fp32 [16] -> [M, N].
    fp32_precision ("tf32" or "ieee") applies to fp32 activations in the 2..64-row tensor-core path."""
    m, k = x.shape
    n, kb = packed.shape
    if m > MAX_SMALL_M:
        raise ValueError(f"nf4_smallm_linear takes at most {MAX_SMALL_M} rows, got {m}")
    if kb * 2 < k or kb % 32 != 0:
        raise ValueError(f"packed nf4 weight [{n}, {kb}] does not cover K={k} in 64-element blocks")
    if x.stride(1) != 1:
        x = x.contiguous()
    bias_arg = bias if bias is not None else absmax
    buckets = (triton.next_power_of_2(n), triton.next_power_of_2(k))
    if m == 1:
        out = torch.empty((m, n), device=x.device, dtype=x.dtype)
        args = (
            x,
            packed,
            absmax,
            code,
            bias_arg,
            out,
            n,
            k,
            kb,
            x.stride(0),
            packed.stride(0),
            absmax.stride(0),
            out.stride(0),
            *buckets,
        )
        if x.is_cuda:
            _gemv_tuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), 1)](*args, HAS_BIAS=bias is not None)
        else:  # TRITON_INTERPRET=1 on CPU: one small fixed tile
            _nf4_gemv_kernel[(triton.cdiv(n, 16), 1)](*args, HAS_BIAS=bias is not None, BLOCK_N=16, BLOCK_KB=32)
        return out
    block_m = block_m_for(m)
    acc = torch.zeros((m, n), device=x.device, dtype=torch.float32)
    args = (
        x,
        packed,
        absmax,
        code,
        bias_arg,
        acc,
        m,
        n,
        k,
        kb,
        x.stride(0),
        packed.stride(0),
        absmax.stride(0),
        acc.stride(0),
        *buckets,
    )
    flags = {"HAS_BIAS": bias is not None, "DOT_PREC": dot_precision(x, fp32_precision)}
    if x.is_cuda:

        def grid(meta: dict[str, int]) -> tuple[int, int, int]:
            return (triton.cdiv(n, meta["BLOCK_N"]), triton.cdiv(m, block_m), meta["SPLIT_K"])

        _dot_tuned[grid](*args, **flags, BLOCK_M=block_m)
    else:
        _nf4_dot_kernel[(triton.cdiv(n, 16), triton.cdiv(m, block_m), 2)](
            *args, **flags, BLOCK_M=block_m, BLOCK_N=16, BLOCK_KB=32, SPLIT_K=2
        )
    return acc.to(x.dtype)
