"""Batch-invariant matmuls for the deterministic mode: y = x @ W.T + b whose every row is bitwise the same whatever
the number of rows M and whatever the other rows hold.

cuBLAS (and our own autotuned kernels) choose tile shapes, split-K and even the algorithm by M, so a row's
reduction order changes with the batch. These kernels fix all of it:

- `matmul_rows` (prefill, scoring): one fixed tile config for every M; a program owns one BLOCK_M x BLOCK_N output
  tile and walks K in BLOCK_K steps from 0 to K in order, accumulating in fp32 (no split-K, no atomics). M only
  decides how many tiles there are. M is not specialised (`do_not_specialize`), so every M runs the same binary.
- `matmul_rows_split` (decode steps: a few rows): K is cut into chunks of SPLIT_K elements, a number that depends
  on K alone; each (row tile, column tile, chunk) program writes an fp32 partial, and one reduce pass adds the
  partials of a row in chunk order 0, 1, 2, ... and the bias. Small batches fill the card through the chunks, and
  a row's sum still never depends on M.

The two give different bits for the same row (their sums are associated differently); a caller picks one by the
phase it is in (prefill or decode), never by M (invariant.py). Both run in Triton's interpreter on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# One config per dtype class, chosen for Hopper and never tuned per shape (tuning by shape is what breaks invariance)
_PREFILL = {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8, "num_warps": 8, "num_stages": 3}
_PREFILL_F32 = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 3}
_SPLIT = {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4}
SPLIT_K = 512  # elements of K per decode chunk: the chunk count is cdiv(K, SPLIT_K), fixed by the weight
_INTERPRETER = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "GROUP_M": 2, "num_warps": 1, "num_stages": 1}


@triton.jit
def _dot_acc(a, w, acc, IEEE_F32: tl.constexpr):
    """acc + a @ w in fp32: exact fp32 products for fp32 inputs (no TF32), tensor cores otherwise."""
    if IEEE_F32:  # noqa: SIM108 (a constexpr branch, not a ternary)
        out = tl.dot(a, w, acc, input_precision="ieee")
    else:
        out = tl.dot(a, w, acc)
    return out


@triton.jit(do_not_specialize=["M"])
def _matmul_rows_kernel(
    A,
    W,
    BIAS,
    OUT,
    M,
    N,
    K,
    stride_am,
    stride_wn,
    stride_om,
    HAS_BIAS: tl.constexpr,
    IEEE_F32: tl.constexpr,
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
    a_ptrs = A + offs_m[:, None].to(tl.int64) * stride_am + offs_k[None, :]
    w_ptrs = W + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_ok = (k0 + offs_k) < K
        a = tl.load(a_ptrs, mask=(offs_m < M)[:, None] & k_ok[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=k_ok[:, None] & (offs_n < N)[None, :], other=0.0)
        acc = _dot_acc(a, w, acc, IEEE_F32)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    if HAS_BIAS:
        acc += tl.load(BIAS + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    tl.store(OUT + offs_m[:, None].to(tl.int64) * stride_om + offs_n[None, :], acc.to(OUT.dtype.element_ty), mask=mask)


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
        w = tl.load(w_ptrs, mask=k_ok[:, None] & (offs_n < N)[None, :], other=0.0)
        acc = _dot_acc(a, w, acc, IEEE_F32)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    base = PART + chunk.to(tl.int64) * M * N
    tl.store(base + offs_m[:, None].to(tl.int64) * N + offs_n[None, :], acc, mask=mask)


@triton.jit(do_not_specialize=["M"])
def _sum_chunks_kernel(
    PART, BIAS, OUT, M, N, stride_om, CHUNKS: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr
):
    row = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < N
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in tl.static_range(CHUNKS):  # chunk order 0, 1, 2, ...: fixed whatever M is
        acc += tl.load(PART + (c * M + row).to(tl.int64) * N + offs, mask=ok, other=0.0)
    if HAS_BIAS:
        acc += tl.load(BIAS + offs, mask=ok, other=0.0).to(tl.float32)
    tl.store(OUT + row.to(tl.int64) * stride_om + offs, acc.to(OUT.dtype.element_ty), mask=ok)


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[int, int, int]:
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"invariant matmul: x {tuple(x.shape)} and weight {tuple(weight.shape)} do not chain")
    if x.stride(1) != 1 or weight.stride(1) != 1:
        raise ValueError("invariant matmul: x and weight need unit stride along K")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"invariant matmul: bias {tuple(bias.shape)} does not match {weight.shape[0]} outputs")
    return x.shape[0], weight.shape[0], x.shape[1]


def _config(x: torch.Tensor, cuda_config: dict[str, int]) -> dict[str, int]:
    return dict(cuda_config) if x.is_cuda else dict(_INTERPRETER)


def matmul_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] @ weight[N, K].T (+ bias) -> [M, N] in x's dtype, one fixed tile config for every M."""
    m, n, k = _check(x, weight, bias)
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return out
    ieee = x.dtype == torch.float32
    cfg = _config(x, _PREFILL_F32 if ieee else _PREFILL)
    warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
    grid = (triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(n, cfg["BLOCK_N"]),)
    _matmul_rows_kernel[grid](
        x, weight, bias if bias is not None else weight, out, m, n, k, x.stride(0), weight.stride(0), out.stride(0),
        HAS_BIAS=bias is not None, IEEE_F32=ieee, num_warps=warps, num_stages=stages, **cfg,
    )  # fmt: skip
    return out


def split_chunks(k: int) -> int:
    """How many K chunks `matmul_rows_split` sums for a weight of K inputs (depends on K alone)."""
    return triton.cdiv(k, SPLIT_K)


def matmul_rows_split(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The decode-phase product: the same function as `matmul_rows` with K summed in fixed chunks of SPLIT_K."""
    m, n, k = _check(x, weight, bias)
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return out
    ieee = x.dtype == torch.float32
    chunks = split_chunks(k)
    part = torch.empty((chunks, m, n), dtype=torch.float32, device=x.device)
    cfg = _config(x, _SPLIT)
    cfg.pop("GROUP_M", None)
    warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
    grid = (triton.cdiv(m, cfg["BLOCK_M"]), triton.cdiv(n, cfg["BLOCK_N"]), chunks)
    _matmul_split_kernel[grid](
        x, weight, part, m, n, k, x.stride(0), weight.stride(0),
        IEEE_F32=ieee, CHUNK=SPLIT_K, num_warps=warps, num_stages=stages, **cfg,
    )  # fmt: skip
    block = 1024 if x.is_cuda else 64
    _sum_chunks_kernel[(m, triton.cdiv(n, block))](
        part, bias if bias is not None else part, out, m, n, out.stride(0),
        CHUNKS=chunks, HAS_BIAS=bias is not None, BLOCK=block, num_warps=4 if x.is_cuda else 1,
    )  # fmt: skip
    return out
