"""Quantized precisions for any causal LM that the HF transformers backend loads.

Every linear layer of the transformer body (torch `nn.Linear`, and transformers' `Conv1D`, GPT-2's transposed
linear) is replaced in place by `quant.build_linear` of its weight: the same int8 / nf4 / fp8 modules, kernels and
storage the native StarCoder2 uses, keeping the model's own forward (attention, norms, caches) untouched. The
output head (`get_output_embeddings()`) and the embeddings stay in the compute dtype, as in the native model and in
bitsandbytes' default. Layers are quantized one at a time on the model's device and their dense weights dropped,
so the peak memory is the dense model's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .quant import QuantOptions, build_linear


def _is_conv1d(module: nn.Module) -> bool:
    """transformers.pytorch_utils.Conv1D (GPT-2 family): y = x @ W + b with W [in, out]."""
    return (
        type(module).__name__ == "Conv1D"
        and hasattr(module, "nf")
        and isinstance(getattr(module, "weight", None), torch.Tensor)
    )


def quantize_hf_linears(
    model: nn.Module, mode: str, compute_dtype: torch.dtype, options: QuantOptions | None = None
) -> int:
    """Replace the linear layers of `model` (all but the output head) by quantized ones of `mode`; returns how many.
    Raises quant.QuantError naming the layer when one cannot be quantized (e.g. fp8 on a shape it cannot tile)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    targets: list[tuple[nn.Module, str, str, nn.Module]] = []
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            if child is head:
                continue
            if isinstance(child, nn.Linear) or _is_conv1d(child):
                full = f"{parent_name}.{child_name}" if parent_name else child_name
                targets.append((parent, child_name, full, child))
    with torch.inference_mode():
        for parent, child_name, full, child in targets:
            weight: Any = child.weight
            dense = weight.detach().t() if _is_conv1d(child) else weight.detach()
            bias = None if child.bias is None else child.bias.detach()
            quantized = build_linear(dense.contiguous(), bias, mode, compute_dtype, name=full, options=options)
            setattr(parent, child_name, quantized)
            del child, weight, dense
    return len(targets)
