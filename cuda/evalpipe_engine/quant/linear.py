"""`build_linear` is the one seam between the model and quantization: the model hands over a dense weight and
bias, and gets back a module that computes y = x @ W.T + b in the requested mode, weights kept quantized."""

from __future__ import annotations

import torch
from torch import nn

from .modes import DENSE_DTYPES, QuantError, check_mode


class DenseLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.to(dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


def build_linear(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mode: str,
    compute_dtype: torch.dtype,
    *,
    name: str = "",
) -> nn.Module:
    """weight: [out_features, in_features] on its target device; `name` is used in error messages."""
    check_mode(mode)
    if mode in DENSE_DTYPES:
        return DenseLinear(weight, bias, DENSE_DTYPES[mode])
    raise QuantError(f"quant mode {mode!r} is not implemented yet (tensor {name})", error_type="unsupported")
