"""HF transformers' own model for a native config holding the same weights: the parity reference (tests) and the
benchmark baseline (bench/). Any family the native engine runs: its config's `to_hf_dict()` names the HF class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..errors import ModelError


def hf_reference_model(
    cfg: Any,
    tensors: Mapping[str, torch.Tensor],
    *,
    device: str | torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
) -> Callable[..., Any]:
    from transformers import AutoConfig, AutoModelForCausalLM

    d = dict(cfg.to_hf_dict())
    d.pop("architectures", None)
    model_type = d.pop("model_type")
    hf_cfg = AutoConfig.for_model(model_type, **d)
    hf_cfg.architectures = [cfg.architecture]
    hf_cfg._attn_implementation = attn_implementation
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_cfg, attn_implementation=attn_implementation).to(dtype)
    missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise ModelError(f"HF reference: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model.eval().requires_grad_(False)
