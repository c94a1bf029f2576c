"""A batch-invariant decode product for 8-bit weights: y = x @ (q * s).T + b whose every row is bitwise the same
whatever the number of rows M and whatever the other rows hold (the deterministic mode, invariant.py).

`matmul_rows_split`: K is cut into chunks of SPLIT_K elements, a number that depends on K alone; each (row tile,
column tile, chunk) program walks its chunk in BLOCK_K steps in order (fp32 accumulation, no atomics) and writes an
fp32 partial; one reduce pass adds a row's partials in chunk order 0, 1, 2, ..., applies the per-channel scale and
the bias. One fixed tile config for every M, and M is not specialised (`do_not_specialize`), so every M runs the
same binary. The weight is read as stored (int8 or fp8, converted tile by tile; or the activation dtype without a
scale): no dequantized copy per step. Runs in Triton's interpreter on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# One config, never tuned per shape (tuning by shape is what breaks invariance); chosen on the H200 among six by
# bench/invariant_configs.py (bench/results/invariant-configs-h200-*.json: the fastest at M = 1 on 3B's shapes)
_SPLIT = {"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4}
SPLIT_K = 512  # elements of K per decode chunk: the chunk count is cdiv(K, SPLIT_K), fixed by the weight
_INTERPRETER = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "num_warps": 1, "num_stages": 1}


@triton.jit
def _dot_acc(a, w, acc, IEEE_F32: tl.constexpr):
    """acc + a @ w in fp32: exact fp32 products for fp32 inputs (no TF32), tensor cores otherwise."""
    if IEEE_F32:  # noqa: SIM108 (a constexpr branch, not a ternary)
        out = tl.dot(a, w, acc, input_precision="ieee")
    else:
        out = tl.dot(a, w, acc)
    return out


@triton.jit(do_not_specialize=["M"])
def _matmul_split_kernel(
    A,
    W,
    PART,
    M,
    N,
    K,
    stride_am,
    stride_wn,
    IEEE_F32: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    chunk = tl.program_id(2)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    k_lo = chunk * CHUNK
    a_ptrs = A + offs_m[:, None].to(tl.int64) * stride_am + (k_lo + offs_k)[None, :]
    w_ptrs = W + offs_n[None, :].to(tl.int64) * stride_wn + (k_lo + offs_k)[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, CHUNK, BLOCK_K):
        k_ok = (k_lo + k0 + offs_k) < K
        a = tl.load(a_ptrs, mask=(offs_m < M)[:, None] & k_ok[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=k_ok[:, None] & (offs_n < N)[None, :], other=0.0).to(a.dtype)
        acc = _dot_acc(a, w, acc, IEEE_F32)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    base = PART + chunk.to(tl.int64) * M * N
    tl.store(base + offs_m[:, None].to(tl.int64) * N + offs_n[None, :], acc, mask=mask)


@triton.jit(do_not_specialize=["M"])
def _sum_chunks_kernel(
    PART,
    W_SCALE,
    BIAS,
    OUT,
    M,
    N,
    stride_om,
    CHUNKS: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_SCALE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < N
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in tl.static_range(CHUNKS):  # chunk order 0, 1, 2, ...: fixed whatever M is
        acc += tl.load(PART + (c * M + row).to(tl.int64) * N + offs, mask=ok, other=0.0)
    if HAS_SCALE:
        acc *= tl.load(W_SCALE + offs, mask=ok, other=0.0)
    if HAS_BIAS:
        acc += tl.load(BIAS + offs, mask=ok, other=0.0).to(tl.float32)
    tl.store(OUT + row.to(tl.int64) * stride_om + offs, acc.to(OUT.dtype.element_ty), mask=ok)


def _check(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor | None
) -> tuple[int, int, int]:
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"invariant matmul: x {tuple(x.shape)} and weight {tuple(weight.shape)} do not chain")
    if x.stride(1) != 1 or weight.stride(1) != 1:
        raise ValueError("invariant matmul: x and weight need unit stride along K")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"invariant matmul: bias {tuple(bias.shape)} does not match {weight.shape[0]} outputs")
    if scale is not None and (scale.shape != (weight.shape[0],) or scale.dtype != torch.float32):
        got = f"{scale.dtype} {tuple(scale.shape)}"
        raise ValueError(f"invariant matmul: scale must be fp32 [{weight.shape[0]}], got {got}")
    if scale is None and weight.dtype != x.dtype:
        raise ValueError(f"invariant matmul: weight {weight.dtype} needs a scale to multiply {x.dtype} activations")
    return x.shape[0], weight.shape[0], x.shape[1]


def _config(x: torch.Tensor, cuda_config: dict[str, int]) -> dict[str, int]:
    return dict(cuda_config) if x.is_cuda else dict(_INTERPRETER)


def split_chunks(k: int, split_k: int = SPLIT_K) -> int:
    """How many K chunks `matmul_rows_split` sums for a weight of K inputs (depends on K alone)."""
    return triton.cdiv(k, split_k)


def matmul_rows_split(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    *,
    config: dict[str, int] | None = None,
    split_k: int = SPLIT_K,
) -> torch.Tensor:
    """x [M, K] @ (weight * scale[:, None])[N, K].T (+ bias) -> [M, N] in x's dtype, K summed in fixed chunks of
    SPLIT_K; `scale` (fp32 [N]) with an int8 / fp8 weight, None with a weight of x's dtype. `config` and `split_k`
    are for benchmarks choosing the fixed config, never per call in the engine."""
    m, n, k = _check(x, weight, bias, scale)
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return out
    ieee = x.dtype == torch.float32
    chunks = split_chunks(k, split_k)
    part = torch.empty((chunks, m, n), dtype=torch.float32, device=x.device)
    cfg = dict(config) if config else _config(x, _SPLIT)
    cfg.pop("GROUP_M", None)
    warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
    grid = (triton.cdiv(m, cfg["BLOCK_M"]), triton.cdiv(n, cfg["BLOCK_N"]), chunks)
    _matmul_split_kernel[grid](
        x, weight, part, m, n, k, x.stride(0), weight.stride(0),
        IEEE_F32=ieee, CHUNK=split_k, num_warps=warps, num_stages=stages, **cfg,
    )  # fmt: skip
    block = 1024 if x.is_cuda else 64
    _sum_chunks_kernel[(m, triton.cdiv(n, block))](
        part, scale if scale is not None else part, bias if bias is not None else part, out, m, n, out.stride(0),
        CHUNKS=chunks, HAS_BIAS=bias is not None, HAS_SCALE=scale is not None, BLOCK=block,
        num_warps=4 if x.is_cuda else 1,
    )  # fmt: skip
    return out
