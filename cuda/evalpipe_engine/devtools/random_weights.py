"""Random weights with HF tensor names for any native config (its `expected_shapes()`), made directly on a device:
tests, parity checks and benchmarks where no real checkpoint can be downloaded."""

from __future__ import annotations

import math
from typing import Any

import torch


def random_state_dict(
    cfg: Any,
    device: torch.device | str,
    dtype: torch.dtype,
    seed: int = 0,
    *,
    residual_scaled: bool = False,
) -> dict[str, torch.Tensor]:
    """Random weights with HF names, made directly on `device` (no CPU round trip for full-size models).
    Linears ~ N(0, initializer_range) (HF's own init), biases and norm parameters small but non-zero so that tests
    see them. `residual_scaled` divides the std of the two projections that write into the residual stream
    (o_proj, c_proj / down_proj) by sqrt(2 * layers), the GPT-2/Megatron practice: a random model that is not
    chaotic, so that bf16 rounding differences are not amplified layer after layer (see docs/fast-path.md, parity)."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    std = cfg.initializer_range
    for name, shape in cfg.expected_shapes().items():
        t = torch.empty(shape, device=dev, dtype=dtype)
        if "layernorm" in name or name.startswith("model.norm"):
            base = 1.0 if name.endswith("weight") else 0.0
            t.normal_(base, 0.05, generator=gen)
        elif name.endswith("bias"):
            t.normal_(0.0, 0.02, generator=gen)
        else:
            scale = 1.0
            if residual_scaled and name.endswith(("o_proj.weight", "c_proj.weight", "down_proj.weight")):
                scale = 1.0 / math.sqrt(2 * cfg.num_hidden_layers)
            t.normal_(0.0, std * scale, generator=gen)
        out[name] = t
    return out
