"""Our flash attention forward kernel (Triton): causal, optional sliding window, grouped-query heads, over PACKED
variable-length sequences described by `cu_seqlens` (no pad tokens are ever computed).

Layout: q [N, Hq, D], k and v [N, Hkv, D] (any row/head strides, last dim contiguous), where N is the total number
of tokens of all sequences; sequence s owns rows cu_seqlens[s]:cu_seqlens[s+1]. Query row i (position p in its
sequence) attends to keys of the same sequence at positions j with j <= p and p - j < window (HF's
`kv_idx > q_idx - sliding_window`). Output o [N, Hq, D] in q's dtype.

One program handles BLOCK_M query rows of one head of one sequence. The key loop visits only the KV blocks that
intersect the causal window band: blocks entirely before the window are skipped, blocks entirely inside the band
run without any masking arithmetic, and only the (at most two) edge regions pay for masks. So the cost per query
is flat in the sequence length once it exceeds the window.

`flash_attention_reference` is the same function in plain PyTorch (per sequence, float32 softmax); tests compare
the kernel against it, on the GPU and on CPU through TRITON_INTERPRET=1.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def scaled_scores(q, k, qk_scale, IEEE_F32: tl.constexpr):
    """q @ k.T * qk_scale (base-2 logits). float32 inputs get true fp32 products (Triton's default for fp32 dots is
    TF32); constexpr branches, not ternaries. Shared with the decode kernel (decode_attention.py)."""
    if IEEE_F32:  # noqa: SIM108
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
    else:
        s = tl.dot(q, tl.trans(k)) * qk_scale
    return s


@triton.jit
def online_softmax_update(acc, m_i, l_i, s, v, m_shift, IEEE_F32: tl.constexpr):
    """One key block of the online softmax: the running sum l_i and output acc, kept relative to the old maximum
    m_i, are rescaled to m_shift (the new maximum, or 0 for rows with no allowed key yet) and this block's
    exp2(s - m_shift) and its values are added. Returns (acc, l_i). Shared with the decode kernel."""
    p = tl.math.exp2(s - m_shift[:, None])
    alpha = tl.math.exp2(m_i - m_shift)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if IEEE_F32:  # noqa: SIM108
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, l_i


@triton.jit
def _attend_block(
    acc,
    m_i,
    l_i,
    q,
    k_base,
    v_base,
    stride_kt,
    stride_vt,
    start_n,
    offs_m,
    offs_n0,
    offs_d,
    seqlen,
    window,
    qk_scale,
    MASKED: tl.constexpr,
    HAS_WINDOW: tl.constexpr,
    IEEE_F32: tl.constexpr,
):
    offs_n = start_n + offs_n0
    if MASKED:
        kv_ok = offs_n < seqlen
        k = tl.load(k_base + offs_n[:, None] * stride_kt + offs_d[None, :], mask=kv_ok[:, None], other=0.0)
        v = tl.load(v_base + offs_n[:, None] * stride_vt + offs_d[None, :], mask=kv_ok[:, None], other=0.0)
    else:
        k = tl.load(k_base + offs_n[:, None] * stride_kt + offs_d[None, :])
        v = tl.load(v_base + offs_n[:, None] * stride_vt + offs_d[None, :])
    s = scaled_scores(q, k, qk_scale, IEEE_F32)
    if MASKED:
        ok = (offs_n[None, :] <= offs_m[:, None]) & (offs_n[None, :] < seqlen)
        if HAS_WINDOW:
            ok = ok & ((offs_m[:, None] - offs_n[None, :]) < window)
        s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # rows with no allowed key yet keep m = -inf; shift by 0 instead so exp2 never sees (-inf) - (-inf)
        m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_shift = m_new
    acc, l_i = online_softmax_update(acc, m_i, l_i, s, v, m_shift, IEEE_F32)
    return acc, m_new, l_i


@triton.jit
def _flash_fwd_kernel(
    Q,
    K,
    V,
    O,
    cu_seqlens,
    stride_qt,
    stride_qh,
    stride_kt,
    stride_kh,
    stride_vt,
    stride_vh,
    stride_ot,
    stride_oh,
    qk_scale,
    window,
    n_m_blocks,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_WINDOW: tl.constexpr,
    IEEE_F32: tl.constexpr,
):
    # heaviest query blocks (last in the sequence) first: better tail behaviour for causal work
    pid_m = n_m_blocks - 1 - tl.program_id(0)
    seq = tl.program_id(1)
    head = tl.program_id(2)
    start = tl.load(cu_seqlens + seq)
    seqlen = tl.load(cu_seqlens + seq + 1) - start
    m0 = pid_m * BLOCK_M
    if m0 >= seqlen:
        return
    kv_head = head // GROUP
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < seqlen
    q_ptrs = Q + (start + offs_m)[:, None].to(tl.int64) * stride_qt + head * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)
    k_base = K + start.to(tl.int64) * stride_kt + kv_head * stride_kh
    v_base = V + start.to(tl.int64) * stride_vt + kv_head * stride_vh

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    hi = tl.minimum(m0 + BLOCK_M, seqlen)
    # blocks [.., full_hi) are causally complete for every row of this query block
    full_hi = m0
    if HAS_WINDOW:
        lo = (tl.maximum(m0 - window + 1, 0) // BLOCK_N) * BLOCK_N
        # a block starting at n is inside the window for every row iff (m0 + BLOCK_M - 1) - n < window
        full_lo = tl.maximum(((m0 + BLOCK_M - window + BLOCK_N - 1) // BLOCK_N) * BLOCK_N, lo)
        full_lo = tl.minimum(full_lo, full_hi)
    else:
        lo = 0
        full_lo = 0
    # left edge of the window band (masked)
    for start_n in range(lo, full_lo, BLOCK_N):
        acc, m_i, l_i = _attend_block(
            acc, m_i, l_i, q, k_base, v_base, stride_kt, stride_vt, start_n, offs_m, offs_n0, offs_d,
            seqlen, window, qk_scale, True, HAS_WINDOW, IEEE_F32,
        )  # fmt: skip
    # interior of the band: no masks at all
    for start_n in range(full_lo, full_hi, BLOCK_N):
        acc, m_i, l_i = _attend_block(
            acc, m_i, l_i, q, k_base, v_base, stride_kt, stride_vt, start_n, offs_m, offs_n0, offs_d,
            seqlen, window, qk_scale, False, HAS_WINDOW, IEEE_F32,
        )  # fmt: skip
    # the diagonal (masked)
    for start_n in range(full_hi, hi, BLOCK_N):
        acc, m_i, l_i = _attend_block(
            acc, m_i, l_i, q, k_base, v_base, stride_kt, stride_vt, start_n, offs_m, offs_n0, offs_d,
            seqlen, window, qk_scale, True, HAS_WINDOW, IEEE_F32,
        )  # fmt: skip

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    o_ptrs = O + (start + offs_m)[:, None].to(tl.int64) * stride_ot + head * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=row_ok[:, None])


def _pick_config(head_dim: int, dtype: torch.dtype, device: torch.device) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages). BLOCK_M must be a multiple of BLOCK_N (the band arithmetic
    relies on it). Chosen from a sweep on an H100 (bench/prefill_matrix.py --sweep; docs/fast-path.md)."""
    if device.type != "cuda":
        return 16, 16, 1, 1  # interpreter: tiny tiles keep CPU tests fast
    if dtype == torch.float32:  # 4-byte tiles: stay inside the 227 KB of shared memory
        return 64, 32, 4, 2
    if head_dim <= 64:
        return 128, 64, 4, 3
    return 128, 128, 8, 3


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    window: int | None,
    *,
    scale: float | None = None,
    out: torch.Tensor | None = None,
    config: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """Packed causal (sliding-window) GQA attention. See the module docstring for layouts."""
    n_tok, n_heads, head_dim = q.shape
    n_kv = k.shape[1]
    if k.shape != (n_tok, n_kv, head_dim) or v.shape != k.shape:
        raise ValueError(f"flash_attention: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not agree")
    if n_heads % n_kv != 0:
        raise ValueError(f"flash_attention: {n_heads} query heads is not a multiple of {n_kv} KV heads")
    if head_dim not in (16, 32, 64, 128, 256):
        raise ValueError(f"flash_attention: head dim {head_dim} unsupported (use 16, 32, 64, 128 or 256)")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.stride(-1) != 1:
            raise ValueError(f"flash_attention: {name} must have a contiguous last dimension")
    if cu_seqlens.dtype != torch.int32:
        cu_seqlens = cu_seqlens.to(torch.int32)
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    block_m, block_n, num_warps, num_stages = config or _pick_config(head_dim, q.dtype, q.device)
    n_seqs = cu_seqlens.numel() - 1
    n_m_blocks = triton.cdiv(max(max_seqlen, 1), block_m)
    sm_scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
    has_window = window is not None and window < max_seqlen
    grid = (n_m_blocks, n_seqs, n_heads)
    _flash_fwd_kernel[grid](
        q, k, v, out, cu_seqlens,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1), out.stride(0), out.stride(1),
        sm_scale * LOG2E, int(window) if has_window else 0, n_m_blocks,
        GROUP=n_heads // n_kv, HEAD_DIM=head_dim, BLOCK_M=block_m, BLOCK_N=block_n, HAS_WINDOW=has_window,
        IEEE_F32=q.dtype == torch.float32,
        num_warps=num_warps, num_stages=num_stages,
    )  # fmt: skip
    return out


def flash_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    window: int | None,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """The same function in float32 PyTorch, one sequence at a time (test reference; O(L^2) memory)."""
    n_heads, head_dim = q.shape[1], q.shape[2]
    group = n_heads // k.shape[1]
    sm_scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for s in range(len(bounds) - 1):
        a, b = bounds[s], bounds[s + 1]
        if b == a:
            continue
        qs = q[a:b].float().transpose(0, 1)
        ks = k[a:b].float().transpose(0, 1).repeat_interleave(group, 0)
        vs = v[a:b].float().transpose(0, 1).repeat_interleave(group, 0)
        pos = torch.arange(b - a, device=q.device)
        allowed = pos[None, :] <= pos[:, None]
        if window is not None:
            allowed &= (pos[:, None] - pos[None, :]) < window
        scores = (qs @ ks.transpose(1, 2)) * sm_scale
        scores = scores.masked_fill(~allowed, float("-inf"))
        out[a:b] = (torch.softmax(scores, -1) @ vs).transpose(0, 1).to(q.dtype)
    return out
