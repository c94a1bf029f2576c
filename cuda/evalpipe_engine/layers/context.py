"""What a model's one forward needs to know besides the token ids: where each token sits (prefill: packed
variable-length sequences) or which cache rows and positions it extends (decode). The forward is the same code for
both; only the attention layer reads the difference (layers/attention.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PrefillContext:
    """Packed sequences: token s of sequence i is row bounds[i] + s. With `kv_out` (a list), each layer appends its
    rotated keys and values ([N, Hkv, D] each): the decoder's prefill."""

    ids: torch.Tensor  # [N] int64 on the device
    positions: torch.Tensor  # [N] int32 on the device
    cu_seqlens: torch.Tensor  # [S+1] int32 on the device
    bounds: list[int]
    max_seqlen: int
    kv_out: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    is_decode = False


@dataclass
class DecodeContext:
    """One decode step over cache rows [0, rows): each row's token goes at `positions[row]` of its cache row and
    attends over positions [0, lengths[row]) (within the window). Static shapes, every index on the device, so the
    step can be captured in a CUDA graph."""

    positions: torch.Tensor  # [rows] int64: the position each row's new token takes
    lengths: torch.Tensor  # [rows] int32: positions + 1
    row_ids: torch.Tensor  # [rows] int64
    k_cache: list[torch.Tensor]  # per layer [rows, Hkv, capacity, D]
    v_cache: list[torch.Tensor]
    key_positions: torch.Tensor  # [capacity] int64 (the masked CPU attention)
    use_kernel: bool  # the Triton decode-attention kernel (CUDA, or TRITON_INTERPRET=1 with attn flash)
    fused_rope: bool  # RoPE + cache append in one Triton launch (kernels/rope.py)
    deterministic: bool
    extra: dict[str, object] = field(default_factory=dict)
    is_decode = True


Context = PrefillContext | DecodeContext
