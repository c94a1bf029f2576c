"""Small-M (decode) GEMM for NF4 weights: y = x @ dq(W).T + b, dequantizing in registers.

Storage (see quant/nf4.py): `packed` uint8 [N, Kp/2], byte j of a row holding element 2j in its high nibble and
2j+1 in its low nibble (the bitsandbytes order); `absmax` fp32 [N, Kp/64], one scale per block of 64 elements
along K; `code` fp32 [16], the NF4 codebook. Kp is K rounded up to 64; the padding codes are never read
against real activations (x is masked to K).

Each program owns BLOCK_N output channels and walks K in tiles of BLOCK_KB bytes (= 2*BLOCK_KB elements),
viewed as [BLOCK_N, BLOCK_KB/32, 32] so one absmax per (row, 64-block) broadcasts over its 32 bytes. The
codebook lookup is a 16-entry (64-byte) table that stays in L1. The weights are read exactly once per call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .quant_smallm import MAX_SMALL_M, block_m_for


@triton.jit
def _nf4_smallm_kernel(
    x_ptr,
    w_ptr,
    absmax_ptr,
    code_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    KB,
    stride_xm,
    stride_wn,
    stride_an,
    stride_om,
    HAS_BIAS: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_KB: tl.constexpr,
):
    NBLK: tl.constexpr = BLOCK_KB // 32
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < N
    blk = tl.arange(0, NBLK)
    j = tl.arange(0, 32)
    n3 = offs_n[:, None, None]
    if BLOCK_M == 1:
        acc3 = tl.zeros((BLOCK_N, NBLK, 32), dtype=tl.float32)
        for kb0 in range(0, KB, BLOCK_KB):
            b2 = kb0 + blk[:, None] * 32 + j[None, :]  # [NBLK, 32] byte index within the row
            b_mask = b2 < KB
            byte = tl.load(w_ptr + n3 * stride_wn + b2[None, :, :], mask=n_mask[:, None, None] & b_mask[None], other=0)
            byte = byte.to(tl.int32)
            c_hi = tl.load(code_ptr + (byte >> 4))
            c_lo = tl.load(code_ptr + (byte & 15))
            a = tl.load(
                absmax_ptr + offs_n[:, None] * stride_an + (kb0 // 32 + blk)[None, :],
                mask=n_mask[:, None] & ((kb0 + blk * 32) < KB)[None, :],
                other=0.0,
            )
            xe = tl.load(x_ptr + pid_m * stride_xm + 2 * b2, mask=2 * b2 < K, other=0.0).to(tl.float32)
            xo = tl.load(x_ptr + pid_m * stride_xm + 2 * b2 + 1, mask=2 * b2 + 1 < K, other=0.0).to(tl.float32)
            acc3 += (c_hi * xe[None] + c_lo * xo[None]) * a[:, :, None]
        acc = tl.sum(tl.sum(acc3, axis=2), axis=1)[None, :]
        offs_m = pid_m + tl.arange(0, 1)
    else:
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        m_mask = offs_m < M
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kb0 in range(0, KB, BLOCK_KB):
            b2 = kb0 + blk[:, None] * 32 + j[None, :]
            b_mask = b2 < KB
            byte = tl.load(w_ptr + n3 * stride_wn + b2[None, :, :], mask=n_mask[:, None, None] & b_mask[None], other=0)
            byte = byte.to(tl.int32)
            a = tl.load(
                absmax_ptr + offs_n[:, None] * stride_an + (kb0 // 32 + blk)[None, :],
                mask=n_mask[:, None] & ((kb0 + blk * 32) < KB)[None, :],
                other=0.0,
            )[:, :, None]
            w_hi = tl.reshape(tl.load(code_ptr + (byte >> 4)) * a, (BLOCK_N, BLOCK_KB))
            w_lo = tl.reshape(tl.load(code_ptr + (byte & 15)) * a, (BLOCK_N, BLOCK_KB))
            bk = kb0 + tl.arange(0, BLOCK_KB)
            xm = offs_m[:, None] * stride_xm
            xe = tl.load(x_ptr + xm + 2 * bk[None, :], mask=m_mask[:, None] & (2 * bk < K)[None, :], other=0.0)
            xo = tl.load(x_ptr + xm + 2 * bk[None, :] + 1, mask=m_mask[:, None] & (2 * bk + 1 < K)[None, :], other=0.0)
            if DOT_F32:
                acc += tl.dot(xe.to(tl.float32), tl.trans(w_hi), input_precision="ieee")
                acc += tl.dot(xo.to(tl.float32), tl.trans(w_lo), input_precision="ieee")
            else:
                acc += tl.dot(xe, tl.trans(w_hi.to(xe.dtype)))
                acc += tl.dot(xo, tl.trans(w_lo.to(xo.dtype)))
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    out_mask = (offs_m < M)[:, None] & n_mask[None, :]
    tl.store(
        out_ptr + offs_m[:, None] * stride_om + offs_n[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=out_mask,
    )


_GEMV_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_KB": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [(8, 256, 4, 1), (16, 256, 4, 1), (8, 512, 4, 1), (16, 128, 4, 2), (32, 128, 8, 2)]
]
_DOT_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_KB": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [(16, 128, 4, 2), (32, 64, 4, 3), (32, 128, 4, 2), (64, 64, 4, 3)]
]
_gemv_tuned = triton.autotune(_GEMV_CONFIGS, key=["N", "K", "DOT_F32"])(_nf4_smallm_kernel)
_dot_tuned = triton.autotune(_DOT_CONFIGS, key=["N", "K", "BLOCK_M", "DOT_F32"])(_nf4_smallm_kernel)


def nf4_smallm_linear(
    x: torch.Tensor,
    packed: torch.Tensor,
    absmax: torch.Tensor,
    code: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """x [M, K] (M <= MAX_SMALL_M); packed uint8 [N, Kp/2]; absmax fp32 [N, Kp/64]; code fp32 [16] -> [M, N]."""
    m, k = x.shape
    n, kb = packed.shape
    if m > MAX_SMALL_M:
        raise ValueError(f"nf4_smallm_linear takes at most {MAX_SMALL_M} rows, got {m}")
    if kb * 2 < k or kb % 32 != 0:
        raise ValueError(f"packed nf4 weight [{n}, {kb}] does not cover K={k} in 64-element blocks")
    if x.stride(1) != 1:
        x = x.contiguous()
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    block_m = block_m_for(m)
    args = (
        x,
        packed,
        absmax,
        code,
        bias if bias is not None else absmax,
        out,
        m,
        n,
        k,
        kb,
        x.stride(0),
        packed.stride(0),
        absmax.stride(0),
        out.stride(0),
    )
    flags = {"HAS_BIAS": bias is not None, "DOT_F32": x.dtype == torch.float32 or not x.is_cuda}
    if x.is_cuda:
        tuned = _gemv_tuned if block_m == 1 else _dot_tuned

        def grid(meta: dict[str, int]) -> tuple[int, int]:
            return (triton.cdiv(n, meta["BLOCK_N"]), triton.cdiv(m, block_m))

        tuned[grid](*args, **flags, BLOCK_M=block_m)
    else:  # TRITON_INTERPRET=1 on CPU: one small fixed tile; its bf16 tl.dot is wrong, so dots run in fp32
        bn, bkb = 16, 32
        _nf4_smallm_kernel[(triton.cdiv(n, bn), triton.cdiv(m, block_m))](
            *args, **flags, BLOCK_M=block_m, BLOCK_N=bn, BLOCK_KB=bkb
        )
    return out
