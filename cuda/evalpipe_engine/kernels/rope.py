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
    dt = x1.dtype
    # HF's rounding steps: cos/sin rounded to x's dtype, each product rounded, then the sum (exact for float32)
    c = c.to(dt).to(tl.float32)
    s = s.to(dt).to(tl.float32)
    a = x1.to(tl.float32)
    b = x2.to(tl.float32)
    o1 = (a * c).to(dt).to(tl.float32) - (b * s).to(dt).to(tl.float32)
    o2 = (b * c).to(dt).to(tl.float32) + (a * s).to(dt).to(tl.float32)
    tl.store(base, o1.to(dt), mask=ok[:, None])
    tl.store(base + HALF, o2.to(dt), mask=ok[:, None])


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
