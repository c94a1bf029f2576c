"""Attention over packed variable-length sequences: causal, optional sliding window, grouped-query heads.

Every backend takes q [N, Hq, D], k/v [N, Hkv, D] and `cu_seqlens` (int32 [S+1]; sequence s owns rows
cu_seqlens[s]:cu_seqlens[s+1]) and returns [N, Hq, D]. A query at position p sees keys of its own sequence at
positions j with j <= p and p - j < window (HF StarCoder2's sliding-window rule); no pad tokens are computed.

- `eager`: the reference math (as HF's eager path: scores in the activation dtype, softmax in float32), one
  sequence at a time, queries in chunks so that 16384-token rows stay bounded in memory.
- `sdpa`: torch.nn.functional.scaled_dot_product_attention per sequence (is_causal when the window does not bite,
  an explicit band mask otherwise).
- `flash`: our Triton kernel (kernels/flash_attention.py) on CUDA. On CPU there is no Triton backend, so `flash`
  falls back to the `sdpa` path, which honours exactly the same masks (set TRITON_INTERPRET=1 to run the real
  kernel through Triton's interpreter instead, as the CPU tests do).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

ATTN_BACKENDS: tuple[str, ...] = ("eager", "sdpa", "flash")
_EAGER_QUERY_CHUNK = 1024


def _band_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None) -> torch.Tensor:
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window is not None:
        allowed &= (q_pos[:, None] - k_pos[None, :]) < window
    return allowed


def _eager_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None, scale: float) -> torch.Tensor:
    length = q.shape[0]
    group = q.shape[1] // k.shape[1]
    kh = k.transpose(0, 1).repeat_interleave(group, 0)  # [Hq, L, D]
    vh = v.transpose(0, 1).repeat_interleave(group, 0)
    out = torch.empty_like(q)
    k_pos = torch.arange(length, device=q.device)
    for a in range(0, length, _EAGER_QUERY_CHUNK):
        b = min(a + _EAGER_QUERY_CHUNK, length)
        lo = 0 if window is None else max(0, a - window + 1)
        qh = q[a:b].transpose(0, 1)  # [Hq, c, D]
        scores = torch.matmul(qh, kh[:, lo:b].transpose(1, 2)) * scale
        allowed = _band_mask(k_pos[a:b], k_pos[lo:b], window)
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out[a:b] = torch.matmul(probs, vh[:, lo:b]).transpose(0, 1)
    return out


def _sdpa_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None, scale: float) -> torch.Tensor:
    length = q.shape[0]
    qh, kh, vh = (t.transpose(0, 1)[None] for t in (q, k, v))
    if window is None or window >= length:
        o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=True)
    else:
        pos = torch.arange(length, device=q.device)
        mask = _band_mask(pos, pos, window)
        o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale, enable_gqa=True)
    return o[0].transpose(0, 1)


def packed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    window: int | None,
    backend: str,
    *,
    bounds: list[int] | None = None,
) -> torch.Tensor:
    """Dispatch to one backend. `bounds` is cu_seqlens as a Python list (saves a device sync when known)."""
    if backend not in ATTN_BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}: use one of {', '.join(ATTN_BACKENDS)}")
    scale = 1.0 / math.sqrt(q.shape[-1])
    if backend == "flash" and (q.device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):
        from .kernels.flash_attention import flash_attention

        return flash_attention(q, k, v, cu_seqlens, max_seqlen, window, scale=scale)
    one = _eager_one if backend == "eager" else _sdpa_one
    if bounds is None:
        bounds = [int(x) for x in cu_seqlens.tolist()]
    out = torch.empty_like(q)
    for s in range(len(bounds) - 1):
        a, b = bounds[s], bounds[s + 1]
        if b > a:
            out[a:b] = one(q[a:b], k[a:b], v[a:b], window, scale)
    return out
