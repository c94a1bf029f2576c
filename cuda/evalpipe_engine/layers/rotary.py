"""Rotary position embeddings: the tables (with the scalings the checkpoints we run use), the reference rotation
(HF's math, in the activation dtype) and the dispatch to our in-place Triton kernel on CUDA.

Scalings (`rope_scaling` / `rope_parameters` of config.json), each computed as transformers'
modeling_rope_utils computes its inverse frequencies (cuda/tests/test_llama.py compares them):
- `default` (none): inv_freq[i] = 1 / theta^(2i / d).
- `linear` (DeepSeek-Coder: factor 4): inv_freq / factor (positions interpolated).
- `dynamic` (NTK-aware): transformers rescales theta only once a sequence grows past max_position_embeddings;
  the engine refuses sequences that long, so inside the range it runs exactly the unscaled tables, as HF does.
- `llama3`: the wavelength-dependent blend of Llama 3.1 (factor, low/high_freq_factor,
  original_max_position_embeddings).
- `yarn`: YaRN's ramp between interpolated and extrapolated frequencies (factor, beta_fast/slow,
  original_max_position_embeddings, truncate) and its attention factor multiplying cos and sin (float32, as HF).
Any other type (longrope, proportional, ...) or a partial rotary factor is refused by `parse_rope_scaling` with the
field named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ModelError

ROPE_TYPES: tuple[str, ...] = ("default", "linear", "dynamic", "llama3", "yarn")


@dataclass(frozen=True)
class RopeScaling:
    """A parsed scaling: `rope_type` and its parameters (factor, original_max_position_embeddings, ...)."""

    rope_type: str = "default"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any] | None:
        if self.rope_type == "default":
            return None
        return {"rope_type": self.rope_type, **dict(self.params)}


_REQUIRED: dict[str, tuple[str, ...]] = {
    "linear": ("factor",),
    "dynamic": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "yarn": ("original_max_position_embeddings",),
}
_ALLOWED: dict[str, tuple[str, ...]] = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor", "original_max_position_embeddings"),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "yarn": (
        "factor",
        "attention_factor",
        "beta_fast",
        "beta_slow",
        "mscale",
        "mscale_all_dim",
        "original_max_position_embeddings",
        "truncate",
    ),
}


def parse_rope_scaling(d: Mapping[str, Any], source: str) -> tuple[float, RopeScaling]:
    """(rope_theta, scaling) from a config.json: the old `rope_scaling` + `rope_theta` fields or transformers 5's
    `rope_parameters`. An unknown type, a missing or unknown parameter, or a partial rotary factor raises
    ModelError (`unsupported`) naming the field."""
    params = d.get("rope_parameters")
    field_name = "rope_parameters"
    if not params:
        params = d.get("rope_scaling")
        field_name = "rope_scaling"
    params = dict(params or {})
    theta = float(params.pop("rope_theta", d.get("rope_theta", 10000.0)))
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params.pop("type")
    params.pop("type", None)
    rope_type = str(params.pop("rope_type", "default"))
    partial = params.pop("partial_rotary_factor", d.get("partial_rotary_factor", 1.0))
    if partial not in (None, 1, 1.0):
        raise ModelError(
            f"partial_rotary_factor {partial} in {source} is not supported: the native engine rotates whole heads",
            error_type="unsupported",
            hint="load it with backend hf",
        )
    if rope_type not in ROPE_TYPES:
        raise ModelError(
            f"{field_name}.rope_type {rope_type!r} in {source} is not supported by the native engine "
            f"(it implements {', '.join(ROPE_TYPES)})",
            error_type="unsupported",
            hint="load it with backend hf (HF transformers), which implements more scalings",
        )
    unknown = sorted(k for k in params if k not in _ALLOWED[rope_type])
    if unknown:
        raise ModelError(
            f"{field_name}.{unknown[0]} in {source} is not a parameter the native engine knows for rope_type "
            f"{rope_type!r}",
            error_type="unsupported",
            hint="load it with backend hf",
        )
    for key in _REQUIRED.get(rope_type, ()):
        if params.get(key) is None:
            raise ModelError(f"{field_name}.{key} is missing in {source} (rope_type {rope_type!r} needs it)")
    factor = params.get("factor")
    if factor is not None and (not isinstance(factor, int | float) or factor <= 0):
        raise ModelError(f"{field_name}.factor {factor!r} in {source} must be a positive number")
    return theta, RopeScaling(rope_type, params)


def _default_inv_freq(head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (theta**exponents)


def rope_inv_freq(
    head_dim: int, theta: float, scaling: RopeScaling, max_positions: int, device: torch.device
) -> tuple[torch.Tensor, float]:
    """(inv_freq [head_dim/2] float32, attention factor) for one scaling, as transformers computes them."""
    p = scaling.params
    kind = scaling.rope_type
    if kind in ("default", "dynamic"):
        # dynamic: HF's init value (seq_len = max_position_embeddings gives the unscaled base); it rescales only
        # for sequences longer than that, which the engine refuses
        return _default_inv_freq(head_dim, theta, device), 1.0
    if kind == "linear":
        return _default_inv_freq(head_dim, theta, device) / float(p["factor"]), 1.0
    if kind == "llama3":
        inv_freq = _default_inv_freq(head_dim, theta, device)
        factor, low, high = float(p["factor"]), float(p["low_freq_factor"]), float(p["high_freq_factor"])
        old = float(p["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, scaled), 1.0
    if kind == "yarn":
        original = int(p["original_max_position_embeddings"])
        factor = p.get("factor")
        factor = max_positions / original if factor is None else float(factor)

        def get_mscale(scale: float, mscale: float = 1.0) -> float:
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

        attention = p.get("attention_factor")
        if attention is None:
            mscale, mscale_all = p.get("mscale"), p.get("mscale_all_dim")
            if mscale and mscale_all:
                attention = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all))
            else:
                attention = get_mscale(factor)
        beta_fast = p.get("beta_fast") or 32
        beta_slow = p.get("beta_slow") or 1
        dim = head_dim

        def correction_dim(rotations: float) -> float:
            return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(theta))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if p.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        pos_freqs = theta ** (torch.arange(0, dim, 2).to(device=device, dtype=torch.float) / dim)
        extrapolation = 1.0 / pos_freqs
        interpolation = 1.0 / (factor * pos_freqs)
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1).to(device)
        extra_factor = 1 - ramp
        inv_freq = interpolation * (1 - extra_factor) + extrapolation * extra_factor
        return inv_freq, float(attention)
    raise ModelError(f"unknown rope type {kind!r}")  # parse_rope_scaling refuses it first


class RopeTables:
    """float32 cos/sin tables [max_pos, head_dim/2] for one (head_dim, theta, scaling), built once on the model's
    device. A YaRN attention factor is folded into both tables (as HF multiplies cos and sin by it)."""

    def __init__(
        self,
        head_dim: int,
        theta: float,
        max_positions: int,
        device: torch.device,
        scaling: RopeScaling | None = None,
    ) -> None:
        if head_dim % 2 != 0:
            raise ValueError(f"rotary embeddings need an even head dim, got {head_dim}")
        scaling = scaling or RopeScaling()
        self.inv_freq, self.attention_factor = rope_inv_freq(head_dim, theta, scaling, max_positions, device)
        pos = torch.arange(max_positions, device=device, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        cos, sin = freqs.cos(), freqs.sin()
        if self.attention_factor != 1.0:
            cos, sin = cos * self.attention_factor, sin * self.attention_factor
        self.cos = cos.contiguous()
        self.sin = sin.contiguous()
        self.head_dim = head_dim
        self.max_positions = max_positions
        self.scaling = scaling


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
        from ..kernels.rope import apply_rope_

        apply_rope_(x, positions, tables.cos, tables.sin, n_rot_heads)
    else:
        x[:, :n_rot_heads] = apply_rope_reference(x[:, :n_rot_heads], positions, tables)
