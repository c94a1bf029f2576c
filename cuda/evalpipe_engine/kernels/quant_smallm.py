"""Small-M (decode) GEMM for 8-bit weights with one scale per output channel: y = (x @ dq(W).T) * s + b.

W is int8 (read as raw bytes) or fp8 E4M3, shape [N, K], row-major; the kernel streams every weight byte
exactly once per call with wide loads and turns it into fp32 in registers, so the cost is the weight bytes
over memory bandwidth. M == 1 uses a plain multiply-and-sum (no tensor cores; a GEMV); 2 <= M <= 64 uses
`tl.dot` on tiles of BLOCK_M rows. The per-channel scale and the bias are applied in the epilogue, so the
output is written once in the activation dtype. Any N and K are handled (masked tails).

int8 -> fp32 uses the 2**23 trick: (byte ^ 0x80) | 0x4B000000 read as fp32 is 2**23 + 128 + q, so one xor/or
and one subtraction replace the slow integer-to-float conversion instruction.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_SMALL_M = 64


@triton.jit
def _w8_to_f32(w, W_INT8: tl.constexpr):
    if W_INT8:
        u = w.to(tl.int32)
        f = ((u ^ 0x80) | 0x4B000000).to(tl.float32, bitcast=True)
        return f - 8388736.0
    else:
        return w.to(tl.float32)


@triton.jit
def _w8_smallm_kernel(
    x_ptr,
    w_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_om,
    HAS_BIAS: tl.constexpr,
    W_INT8: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < N
    if BLOCK_M == 1:
        acc2 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            k_mask = offs_k < K
            w = tl.load(
                w_ptr + offs_n[:, None] * stride_wn + offs_k[None, :],
                mask=n_mask[:, None] & k_mask[None, :],
                other=0,
            )
            x = tl.load(x_ptr + pid_m * stride_xm + offs_k, mask=k_mask, other=0.0).to(tl.float32)
            acc2 += _w8_to_f32(w, W_INT8) * x[None, :]
        acc = tl.sum(acc2, axis=1)[None, :]
        offs_m = pid_m + tl.arange(0, 1)
    else:
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        m_mask = offs_m < M
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            k_mask = offs_k < K
            w = tl.load(
                w_ptr + offs_n[:, None] * stride_wn + offs_k[None, :],
                mask=n_mask[:, None] & k_mask[None, :],
                other=0,
            )
            x = tl.load(
                x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :],
                mask=m_mask[:, None] & k_mask[None, :],
                other=0.0,
            )
            wf = _w8_to_f32(w, W_INT8)
            if DOT_F32:
                acc += tl.dot(x.to(tl.float32), tl.trans(wf), input_precision="ieee")
            else:
                acc += tl.dot(x, tl.trans(wf.to(x.dtype)))
    scale = tl.load(scale_ptr + offs_n, mask=n_mask, other=0.0)
    acc = acc * scale[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    out_mask = (offs_m < M)[:, None] & n_mask[None, :]
    tl.store(
        out_ptr + offs_m[:, None] * stride_om + offs_n[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=out_mask,
    )


_GEMV_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [(8, 512, 4, 1), (16, 512, 4, 1), (8, 1024, 4, 1), (16, 256, 4, 2), (32, 256, 8, 2)]
]
_DOT_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [(16, 256, 4, 3), (32, 128, 4, 4), (32, 256, 4, 3), (64, 128, 4, 3)]
]
_gemv_tuned = triton.autotune(_GEMV_CONFIGS, key=["N", "K", "W_INT8", "DOT_F32"])(_w8_smallm_kernel)
_dot_tuned = triton.autotune(_DOT_CONFIGS, key=["N", "K", "BLOCK_M", "W_INT8", "DOT_F32"])(_w8_smallm_kernel)


def block_m_for(m: int) -> int:
    """Rows per program: 1 for a GEMV, else the next power of two >= 16 (the smallest `tl.dot` tile)."""
    if m == 1:
        return 1
    return max(16, triton.next_power_of_2(m))


def w8_smallm_linear(
    x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x [M, K] (M <= MAX_SMALL_M), weight [N, K] int8 or float8_e4m3fn, scale [N] fp32 -> [M, N] in x.dtype."""
    m, k = x.shape
    n = weight.shape[0]
    if m > MAX_SMALL_M:
        raise ValueError(f"w8_smallm_linear takes at most {MAX_SMALL_M} rows, got {m}")
    if x.stride(1) != 1:
        x = x.contiguous()
    w_int8 = weight.dtype == torch.int8
    w = weight.view(torch.uint8) if w_int8 else weight
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    block_m = block_m_for(m)
    args = (x, w, scale, bias if bias is not None else scale, out, m, n, k, x.stride(0), w.stride(0), out.stride(0))
    flags = {"HAS_BIAS": bias is not None, "W_INT8": w_int8, "DOT_F32": x.dtype == torch.float32 or not x.is_cuda}
    if x.is_cuda:
        tuned = _gemv_tuned if block_m == 1 else _dot_tuned

        def grid(meta: dict[str, int]) -> tuple[int, int]:
            return (triton.cdiv(n, meta["BLOCK_N"]), triton.cdiv(m, block_m))

        tuned[grid](*args, **flags, BLOCK_M=block_m)
    else:  # TRITON_INTERPRET=1 on CPU: one small fixed tile; its bf16 tl.dot is wrong, so dots run in fp32
        bn, bk = 16, 32
        _w8_smallm_kernel[(triton.cdiv(n, bn), triton.cdiv(m, block_m))](
            *args, **flags, BLOCK_M=block_m, BLOCK_N=bn, BLOCK_K=bk
        )
    return out
