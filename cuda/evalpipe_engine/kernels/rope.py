"""Rotary position embedding applied in place to the query and key heads of a fused qkv buffer (Triton).

x: [N, H, D] view (last dim contiguous) of which heads [0, n_rot_heads) are rotated; positions: [N] int;
cos/sin: float32 tables [max_pos, D/2]. Rotation is the "rotate half" convention used by StarCoder2/Llama:
out[:D/2] = x1*cos - x2*sin, out[D/2:] = x2*cos + x1*sin, with HF's rounding steps in x's dtype (cos/sin, each
product, the sum), so that bf16 results match HF transformers bit for bit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rotate_half(x1, x2, c, s):
    """The rotate-half rotation of (x1, x2) by float32 cos/sin with HF's rounding steps: cos/sin rounded to x's
    dtype, each product rounded, then the sum (exact for float32). Returns (out1, out2) in x's dtype."""
    dt = x1.dtype
    c = c.to(dt).to(tl.float32)
    s = s.to(dt).to(tl.float32)
    a = x1.to(tl.float32)
    b = x2.to(tl.float32)
    o1 = (a * c).to(dt).to(tl.float32) - (b * s).to(dt).to(tl.float32)
    o2 = (b * c).to(dt).to(tl.float32) + (a * s).to(dt).to(tl.float32)
    return o1.to(dt), o2.to(dt)


@triton.jit
def _rope_kernel(
    X,
    POS,
    COS,
    SIN,
    n_tok,
    stride_xt,
    stride_xh,
    HALF: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    pid_t = tl.program_id(0)
    head = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_d = tl.arange(0, HALF)
    ok = offs_t < n_tok
    pos = tl.load(POS + offs_t, mask=ok, other=0).to(tl.int64)
    c = tl.load(COS + pos[:, None] * HALF + offs_d[None, :], mask=ok[:, None], other=0.0)
    s = tl.load(SIN + pos[:, None] * HALF + offs_d[None, :], mask=ok[:, None], other=0.0)
    base = X + offs_t[:, None].to(tl.int64) * stride_xt + head * stride_xh + offs_d[None, :]
    x1 = tl.load(base, mask=ok[:, None], other=0.0)
    x2 = tl.load(base + HALF, mask=ok[:, None], other=0.0)
    o1, o2 = _rotate_half(x1, x2, c, s)
    tl.store(base, o1, mask=ok[:, None])
    tl.store(base + HALF, o2, mask=ok[:, None])


@triton.jit
def _rope_kv_append_kernel(
    QKV,
    POS,
    COS,
    SIN,
    K,
    V,
    stride_qt,
    stride_qh,
    stride_cr,
    stride_ch,
    stride_cp,
    n_q,
    n_kv,
    HEADS: tl.constexpr,
    HALF: tl.constexpr,
):
    """Program `row` of a decode step's qkv [rows, n_q + 2 n_kv, D], all its heads at once (HEADS: their count
    rounded up to a power of two): the query heads rotated in place, the key heads rotated and stored at the row's
    position in the key cache, the value heads copied into the value cache. One program a row, not one a (row,
    head): a head is only 2 x HALF elements, and 28 programs of one warp a row were 0.57 ms of a 1024-row step
    (bench/results/decode-profile-1024rows-h200-2026-12-04.json)."""
    row = tl.program_id(0).to(tl.int64)
    pos = tl.load(POS + row).to(tl.int64)
    offs = tl.arange(0, HALF)[None, :]
    head = tl.arange(0, HEADS)[:, None]
    live = head < n_q + 2 * n_kv
    src = QKV + row * stride_qt + head * stride_qh + offs
    x1 = tl.load(src, mask=live, other=0.0)
    x2 = tl.load(src + HALF, mask=live, other=0.0)
    c = tl.load(COS + pos * HALF + offs)
    s = tl.load(SIN + pos * HALF + offs)
    o1, o2 = _rotate_half(x1, x2, c, s)
    is_q = head < n_q
    tl.store(src, o1, mask=is_q)
    tl.store(src + HALF, o2, mask=is_q)
    is_k = (head >= n_q) & (head < n_q + n_kv)
    k_dst = K + row * stride_cr + tl.maximum(head - n_q, 0) * stride_ch + pos * stride_cp + offs
    tl.store(k_dst, o1, mask=is_k)
    tl.store(k_dst + HALF, o2, mask=is_k)
    is_v = (head >= n_q + n_kv) & live
    v_dst = V + row * stride_cr + tl.maximum(head - n_q - n_kv, 0) * stride_ch + pos * stride_cp + offs
    tl.store(v_dst, x1, mask=is_v)
    tl.store(v_dst + HALF, x2, mask=is_v)


def apply_rope_(
    x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_rot_heads: int
) -> None:
    """Rotate heads [0, n_rot_heads) of x [N, H, D] in place."""
    n_tok, _, head_dim = x.shape
    half = head_dim // 2
    if x.stride(-1) != 1:
        raise ValueError("apply_rope_: x must have a contiguous last dimension")
    if cos.shape[-1] != half or sin.shape != cos.shape:
        raise ValueError(f"apply_rope_: tables {tuple(cos.shape)} do not match head dim {head_dim}")
    block_t = 16 if x.device.type != "cuda" else 32
    grid = (triton.cdiv(n_tok, block_t), n_rot_heads)
    _rope_kernel[grid](x, positions, cos, sin, n_tok, x.stride(0), x.stride(1), HALF=half, BLOCK_T=block_t, num_warps=4)


def rope_kv_append_(
    qkv: torch.Tensor,
    positions: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    n_q: int,
) -> None:
    """One decode step's rotary embedding and cache append in one launch (instead of a RoPE kernel and two
    index_put writes): qkv [rows, n_q + 2 n_kv, D] (heads: queries, keys, values); positions [rows] int, each
    row's position; caches [rows, n_kv, capacity, D] (same strides). Queries are rotated in place in qkv; each
    row's rotated key and its value are written at [row, :, positions[row]] of the caches."""
    rows, heads, head_dim = qkv.shape
    n_kv = (heads - n_q) // 2
    half = head_dim // 2
    if qkv.stride(-1) != 1 or k_cache.stride(-1) != 1 or k_cache.stride() != v_cache.stride():
        raise ValueError("rope_kv_append_: qkv and the caches need a contiguous last dimension and equal strides")
    if n_q + 2 * n_kv != heads or k_cache.shape[0] < rows or k_cache.shape[1] != n_kv or k_cache.shape[3] != head_dim:
        raise ValueError(
            f"rope_kv_append_: qkv {tuple(qkv.shape)} with {n_q} query heads does not match the cache "
            f"{tuple(k_cache.shape)}"
        )
    if half & (half - 1) or cos.shape[-1] != half or sin.shape != cos.shape:
        raise ValueError(f"rope_kv_append_: head dim {head_dim} needs a power-of-two half and tables of that width")
    _rope_kv_append_kernel[(rows,)](
        qkv, positions, cos, sin, k_cache, v_cache,
        qkv.stride(0), qkv.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        n_q, n_kv, HEADS=triton.next_power_of_2(heads), HALF=half, num_warps=4,
    )  # fmt: skip
