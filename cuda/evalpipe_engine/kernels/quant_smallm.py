"""Small-M (decode) GEMM for 8-bit weights with one scale per output channel: y = (x @ dq(W).T) * s + b.

W is int8 or fp8 E4M3, shape [N, K], row-major, read as raw bytes; every weight byte is streamed exactly once
per call with wide loads and turned into a float in registers, so the cost is the weight bytes over memory
bandwidth. Any N and K are handled (masked tails).

- M == 1 (`_w8_gemv_kernel`): a GEMV, multiply-and-sum in fp32 (no tensor cores), BLOCK_N rows per program,
  scale, bias and the cast fused in the epilogue: one launch.
- 2 <= M <= 64 (`_w8_dot_kernel`): `tl.dot` on [BLOCK_M, BLOCK_K] x [BLOCK_K, BLOCK_N] tiles. BLOCK_N must be
  wide (64-128) so that re-reading x from L2 stays small next to the weights, which leaves too few programs for
  N = 3072; so K is split SPLIT_K ways and the partial products are atomically added into a zeroed fp32 [M, N]
  buffer (L2-resident), then cast: three launches.

int8 -> fp32 uses the 2**23 trick: (byte ^ 0x80) | 0x4B000000 read as fp32 is 2**23 + 128 + q, so one xor/or
and one subtraction replace the slow integer-to-float conversion; fp8 bytes are bitcast to E4M3 and converted.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_SMALL_M = 64


def quick_bench(fn: object, quantiles: object = None) -> object:
    """Autotuning timer: 5 ms warm-up, 25 ms of repeats per config (the kernels run for microseconds)."""
    return triton.testing.do_bench(fn, warmup=5, rep=25, quantiles=quantiles)


@triton.jit
def _w8_to_f32(w, W_INT8: tl.constexpr):
    if W_INT8:
        u = w.to(tl.int32)
        f = ((u ^ 0x80) | 0x4B000000).to(tl.float32, bitcast=True)
        return f - 8388736.0
    else:
        return w.to(tl.float8e4nv, bitcast=True).to(tl.float32)


@triton.jit
def dot_at_precision(acc, x, w, DOT_PREC: tl.constexpr):
    """acc + x @ w for the split-K dot kernels (here and nf4_smallm.py), w dequantized fp32: DOT_PREC 2 exact fp32
    (ieee), 1 tf32, 0 in x's own 16-bit dtype (w cast to it)."""
    if DOT_PREC == 2:
        acc += tl.dot(x.to(tl.float32), w, input_precision="ieee")
    elif DOT_PREC == 1:
        acc += tl.dot(x.to(tl.float32), w, input_precision="tf32")
    else:
        acc += tl.dot(x, w.to(x.dtype))
    return acc


@triton.jit
def add_split_partial(acc, acc_ptr, bias_ptr, offs_m, offs_n, m_mask, n_mask, stride_am, pid_s, HAS_BIAS: tl.constexpr):
    """The split-K epilogue of the dot kernels: the first split adds the bias, then every split's fp32 partial
    [BLOCK_M, BLOCK_N] is atomically added into the zeroed accumulator."""
    if HAS_BIAS:  # noqa: SIM102 (constexpr test, then a runtime one)
        if pid_s == 0:
            acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    tl.atomic_add(
        acc_ptr + offs_m[:, None] * stride_am + offs_n[None, :],
        acc,
        mask=m_mask[:, None] & n_mask[None, :],
        sem="relaxed",
    )


@triton.jit
def _w8_gemv_kernel(
    x_ptr,
    w_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_om,
    N_BUCKET,  # autotune key only: next power of two of N
    K_BUCKET,  # autotune key only: next power of two of K
    HAS_BIAS: tl.constexpr,
    W_INT8: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    row = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < N
    acc2 = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_mask = offs_k < K
        w = tl.load(
            w_ptr + offs_n[:, None] * stride_wn + offs_k[None, :], mask=n_mask[:, None] & k_mask[None, :], other=0
        )
        x = tl.load(x_ptr + row * stride_xm + offs_k, mask=k_mask, other=0.0).to(tl.float32)
        acc2 += _w8_to_f32(w, W_INT8) * x[None, :]
    acc = tl.sum(acc2, axis=1) * tl.load(scale_ptr + offs_n, mask=n_mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * stride_om + offs_n, acc.to(out_ptr.dtype.element_ty), mask=n_mask)


@triton.jit
def _w8_dot_kernel(
    x_ptr,
    w_ptr,
    scale_ptr,
    bias_ptr,
    acc_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_am,
    N_BUCKET,
    K_BUCKET,
    HAS_BIAS: tl.constexpr,
    W_INT8: tl.constexpr,
    DOT_PREC: tl.constexpr,  # 0: x's own 16-bit dtype, 1: tf32, 2: exact fp32 (ieee)
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_s = tl.program_id(2)
    k_per_split = tl.cdiv(tl.cdiv(K, SPLIT_K), BLOCK_K) * BLOCK_K
    k_begin = pid_s * k_per_split
    k_end = tl.minimum(k_begin + k_per_split, K)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    n_mask = offs_n < N
    m_mask = offs_m < M
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(k_begin, k_end, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_mask = offs_k < k_end
        w = tl.load(
            w_ptr + offs_n[None, :] * stride_wn + offs_k[:, None], mask=k_mask[:, None] & n_mask[None, :], other=0
        )
        x = tl.load(
            x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :], mask=m_mask[:, None] & k_mask[None, :], other=0.0
        )
        acc = dot_at_precision(acc, x, _w8_to_f32(w, W_INT8), DOT_PREC)
    acc = acc * tl.load(scale_ptr + offs_n, mask=n_mask, other=0.0)[None, :]
    add_split_partial(acc, acc_ptr, bias_ptr, offs_m, offs_n, m_mask, n_mask, stride_am, pid_s, HAS_BIAS)


_GEMV_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [
        (8, 512, 4, 1),
        (16, 512, 4, 1),
        (8, 1024, 4, 1),
        (16, 1024, 8, 1),
        (32, 512, 8, 1),
        (16, 256, 4, 2),
    ]
]
_DOT_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk, "SPLIT_K": sk}, num_warps=w, num_stages=s)
    for bn, bk, sk, w, s in [
        (64, 128, 4, 4, 3),
        (128, 128, 4, 4, 3),
        (64, 256, 8, 4, 3),
        (128, 64, 8, 4, 4),
        (128, 128, 2, 8, 3),
    ]
]
_gemv_tuned = triton.autotune(_GEMV_CONFIGS, key=["N_BUCKET", "K_BUCKET", "W_INT8"], do_bench=quick_bench)(
    _w8_gemv_kernel
)
_dot_tuned = triton.autotune(
    _DOT_CONFIGS,
    key=["N_BUCKET", "K_BUCKET", "BLOCK_M", "W_INT8", "DOT_PREC"],
    reset_to_zero=["acc_ptr"],
    do_bench=quick_bench,
)(_w8_dot_kernel)


def block_m_for(m: int) -> int:
    """Rows per program of the dot path: the next power of two >= 16 (the smallest `tl.dot` tile)."""
    return max(16, triton.next_power_of_2(m))


def dot_precision(x: torch.Tensor, fp32_precision: str) -> int:
    """DOT_PREC for the dot kernels: 16-bit activations multiply in their own dtype; fp32 ones in tf32 or exactly.
    The CPU interpreter's bf16 tl.dot is wrong (triton 3.8), so there dots always run in exact fp32."""
    if not x.is_cuda:
        return 2
    if x.dtype != torch.float32:
        return 0
    return 1 if fp32_precision == "tf32" else 2


def w8_smallm_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    fp32_precision: str = "ieee",
) -> torch.Tensor:
    """x [M, K] (M <= MAX_SMALL_M), weight [N, K] int8 or float8_e4m3fn, scale [N] fp32 -> [M, N] in x.dtype.
    fp32_precision ("tf32" or "ieee") applies to fp32 activations in the 2..64-row tensor-core path."""
    m, k = x.shape
    n = weight.shape[0]
    if m > MAX_SMALL_M:
        raise ValueError(f"w8_smallm_linear takes at most {MAX_SMALL_M} rows, got {m}")
    if weight.dtype not in (torch.int8, torch.float8_e4m3fn):
        raise ValueError(f"w8_smallm_linear needs int8 or float8_e4m3fn weights, got {weight.dtype}")
    if x.stride(1) != 1:
        x = x.contiguous()
    w_int8 = weight.dtype == torch.int8
    w = weight.view(torch.uint8)
    bias_arg = bias if bias is not None else scale
    buckets = (triton.next_power_of_2(n), triton.next_power_of_2(k))
    if m == 1:
        out = torch.empty((m, n), device=x.device, dtype=x.dtype)
        args = (x, w, scale, bias_arg, out, n, k, x.stride(0), w.stride(0), out.stride(0), *buckets)
        flags = {"HAS_BIAS": bias is not None, "W_INT8": w_int8}
        if x.is_cuda:
            _gemv_tuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), 1)](*args, **flags)
        else:  # TRITON_INTERPRET=1 on CPU: one small fixed tile
            _w8_gemv_kernel[(triton.cdiv(n, 16), 1)](*args, **flags, BLOCK_N=16, BLOCK_K=32)
        return out
    block_m = block_m_for(m)
    acc = torch.zeros((m, n), device=x.device, dtype=torch.float32)
    args = (x, w, scale, bias_arg, acc, m, n, k, x.stride(0), w.stride(0), acc.stride(0), *buckets)
    flags = {"HAS_BIAS": bias is not None, "W_INT8": w_int8, "DOT_PREC": dot_precision(x, fp32_precision)}
    if x.is_cuda:

        def grid(meta: dict[str, int]) -> tuple[int, int, int]:
            return (triton.cdiv(n, meta["BLOCK_N"]), triton.cdiv(m, block_m), meta["SPLIT_K"])

        _dot_tuned[grid](*args, **flags, BLOCK_M=block_m)
    else:
        _w8_dot_kernel[(triton.cdiv(n, 16), triton.cdiv(m, block_m), 2)](
            *args, **flags, BLOCK_M=block_m, BLOCK_N=16, BLOCK_K=32, SPLIT_K=2
        )
    return acc.to(x.dtype)
