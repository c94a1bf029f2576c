"""Rotary position embeddings: the tables, the reference rotation (HF's math, in the activation dtype) and the
dispatch to our in-place Triton kernel on CUDA."""

from __future__ import annotations

import torch


class RopeTables:
    """float32 cos/sin tables [max_pos, head_dim/2] for one (head_dim, theta), built once on the model's device."""

    def __init__(self, head_dim: int, theta: float, max_positions: int, device: torch.device) -> None:
        if head_dim % 2 != 0:
            raise ValueError(f"rotary embeddings need an even head dim, got {head_dim}")
        exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
        self.inv_freq = 1.0 / (theta**exponents)
        pos = torch.arange(max_positions, device=device, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        self.cos = freqs.cos().contiguous()
        self.sin = freqs.sin().contiguous()
        self.head_dim = head_dim
        self.max_positions = max_positions


def apply_rope_reference(x: torch.Tensor, positions: torch.Tensor, tables: RopeTables) -> torch.Tensor:
    """x [N, H, D] -> rotated copy, computed like HF: cos/sin rounded to x's dtype, rotate-half products in it."""
    cos = torch.cat([tables.cos[positions], tables.cos[positions]], dim=-1).to(x.dtype)[:, None, :]
    sin = torch.cat([tables.sin[positions], tables.sin[positions]], dim=-1).to(x.dtype)[:, None, :]
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def apply_rope_inplace(x: torch.Tensor, positions: torch.Tensor, tables: RopeTables, n_rot_heads: int) -> None:
    """Rotate heads [0, n_rot_heads) of x [N, H, D] in place: the Triton kernel on CUDA, the reference on CPU."""
    if x.device.type == "cuda":
        from .kernels.rope import apply_rope_

        apply_rope_(x, positions, tables.cos, tables.sin, n_rot_heads)
    else:
        x[:, :n_rot_heads] = apply_rope_reference(x[:, :n_rot_heads], positions, tables)
