"""The attention layer of every native model: rotary embedding, then causal (optionally windowed) grouped-query
attention, reading its context to know whether this is a prefill (packed sequences: attention.py's eager / sdpa /
flash backends) or a decode step (one token per cache row: the key and value go into the cache at the row's
position, then the Triton decode kernel or its PyTorch equivalents over the static cache).

The layer takes the fused qkv projection [N, Hq + 2 Hkv, D] (heads: queries, keys, values) and returns
[N, Hq * D]; the projections themselves are the model's linears (the quantization seam).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attention import packed_attention
from .context import Context, DecodeContext
from .rotary import RopeTables, apply_rope_inplace


def masked_decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: torch.Tensor,
    window: int | None,
    key_positions: torch.Tensor,
) -> torch.Tensor:
    """The decode kernel's function in PyTorch with static shapes (the CPU path): SDPA of q [n, Hq, D] over the
    whole cache [n, Hkv, C, D] with positions outside [length - window, length) masked out; `length` holds one
    element or one per row. The cache must hold finite values everywhere (the decoder zero-fills it)."""
    ends = length.view(-1, 1)
    allowed = key_positions.view(1, -1) < ends
    if window is not None:
        allowed = allowed & (key_positions.view(1, -1) >= ends - window)
    mask = allowed[:, None, None, :]
    # GQA without expanding the cache: the `group` query heads that share a KV head become that head's query
    # positions (query head h reads KV head h // group), so SDPA sees [n, Hkv, group, D] against [n, Hkv, C, D]
    # and any of its kernels that takes a mask can run (enable_gqa would push CUDA to the math backend, which
    # materialises the repeated cache).
    n, hq, d = q.shape
    hkv = k_cache.shape[1]
    o = F.scaled_dot_product_attention(q.reshape(n, hkv, hq // hkv, d), k_cache, v_cache, attn_mask=mask)
    return o.reshape(n, hq, d)


def per_row_decode_attention(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: list[int], window: int | None
) -> torch.Tensor:
    """The deterministic mode's CPU decode attention: each row attends over exactly its own positions
    [length - window, length), one SDPA call per row, so its result depends on nothing but the row (a masked SDPA
    over the whole cache sums over a capacity that the other prompts of the batch decide)."""
    n, hq, d = q.shape
    hkv = k_cache.shape[1]
    out = torch.empty_like(q)
    for r in range(n):
        end = lengths[r]
        lo = 0 if window is None else max(0, end - window)
        qr = q[r].reshape(hkv, hq // hkv, d)
        out[r] = F.scaled_dot_product_attention(qr, k_cache[r, :, lo:end], v_cache[r, :, lo:end]).reshape(hq, d)
    return out


class Attention:
    """Rotary + attention of one layer (no weights: the projections are the model's linears)."""

    def __init__(
        self,
        layer: int,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        window: int | None,
        rope: RopeTables,
        backend: str,
    ) -> None:
        self.layer = layer
        self.hq, self.hkv, self.d = n_heads, n_kv_heads, head_dim
        self.window = window
        self.rope = rope
        self.backend = backend

    def __call__(self, qkv: torch.Tensor, ctx: Context) -> torch.Tensor:
        if isinstance(ctx, DecodeContext):
            return self._decode(qkv, ctx)
        n = qkv.shape[0]
        hq, hkv = self.hq, self.hkv
        apply_rope_inplace(qkv, ctx.positions, self.rope, hq + hkv)
        if ctx.kv_out is not None:
            ctx.kv_out.append((qkv[:, hq : hq + hkv].clone(), qkv[:, hq + hkv :].clone()))
        a = packed_attention(
            qkv[:, :hq],
            qkv[:, hq : hq + hkv],
            qkv[:, hq + hkv :],
            ctx.cu_seqlens,
            ctx.max_seqlen,
            self.window,
            self.backend,
            bounds=ctx.bounds,
        )
        return a.view(n, hq * self.d)

    def _decode(self, qkv: torch.Tensor, ctx: DecodeContext) -> torch.Tensor:
        rows = qkv.shape[0]
        hq, hkv = self.hq, self.hkv
        kc, vc = ctx.k_cache[self.layer], ctx.v_cache[self.layer]
        pos = ctx.positions
        if ctx.fused_rope:
            from ..kernels.rope import rope_kv_append_

            rope_kv_append_(qkv, pos, self.rope.cos, self.rope.sin, kc, vc, hq)
        else:
            apply_rope_inplace(qkv, pos, self.rope, hq + hkv)
            kc[ctx.row_ids, :, pos] = qkv[:, hq : hq + hkv]
            vc[ctx.row_ids, :, pos] = qkv[:, hq + hkv :]
        q = qkv[:, :hq]
        if ctx.use_kernel:
            from ..kernels.decode_attention import DETERMINISTIC_SPLITS, decode_attention

            # the fast path picks the KV splits from the batch size; the deterministic mode fixes them
            splits = DETERMINISTIC_SPLITS if ctx.deterministic else None
            a = decode_attention(q, kc, vc, ctx.lengths, self.window, num_splits=splits)
        elif ctx.deterministic and not q.is_cuda:
            a = per_row_decode_attention(q, kc, vc, ctx.lengths.tolist(), self.window)
        else:
            a = masked_decode_attention(q, kc, vc, ctx.lengths, self.window, ctx.key_positions)
        return a.reshape(rows, hq * self.d)
