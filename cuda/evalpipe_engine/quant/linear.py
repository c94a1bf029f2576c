"""`build_linear` is the one seam between the model and quantization: the model hands over a dense weight and
bias, and gets back a module that computes y = x @ W.T + b in the requested mode, weights kept quantized."""

from __future__ import annotations

import torch
from torch import nn

from ..invariant import invariant_linear
from .common import QuantLinearBase, QuantOptions, check_weight, module_bytes
from .fp8 import Fp8Linear
from .int8 import Int8Linear
from .modes import DENSE_DTYPES, QuantError, check_mode
from .nf4 import Nf4Linear

_QUANTIZED: dict[str, type[QuantLinearBase]] = {"int8": Int8Linear, "nf4": Nf4Linear, "fp8": Fp8Linear}


class DenseLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.to(dtype), requires_grad=False)
        self.invariant = False  # the deterministic mode's batch-invariant products (invariant.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.invariant:
            return invariant_linear(x, self.weight, self.bias)
        return nn.functional.linear(x, self.weight, self.bias)


def build_linear(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mode: str,
    compute_dtype: torch.dtype,
    *,
    name: str = "",
    options: QuantOptions | None = None,
) -> nn.Module:
    """weight: [out_features, in_features] on its target device; `name` is used in error messages.

    Dense modes ignore `compute_dtype` (the mode is the dtype). Quantized modes keep their own storage and take
    and return activations of `compute_dtype` (bf16, fp16 or fp32)."""
    check_mode(mode)
    if mode in DENSE_DTYPES:
        return DenseLinear(weight, bias, DENSE_DTYPES[mode])
    if compute_dtype not in DENSE_DTYPES.values():
        raise QuantError(f"{mode}: compute dtype {compute_dtype} is not one of bf16, fp16, fp32 (tensor {name})")
    check_weight(weight, bias, mode, name)
    return _QUANTIZED[mode](weight, bias, compute_dtype, options or QuantOptions(), name)


def linear_weight_bytes(module: nn.Module) -> int:
    """Bytes a linear from build_linear keeps in memory (quantized payload, scales, bias)."""
    return module_bytes(module)
