"""The norms, each fused with the residual add that precedes it: `norm.add(x, y)` is x += y (the residual stream,
in place) then norm(x), one Triton pass on CUDA; `norm.first(x)` is the plain norm of the embeddings (layer 0's
input norm).

- `AddLayerNorm` (StarCoder2): LayerNorm with bias. On the fp8 prefill path (`quantize_for` true) the same pass
  also quantizes the result per token for the fp8 linear it feeds (kernels/fused_quant.py) and returns
  quant.fp8.QuantizedRows instead of a tensor.
- `AddRMSNorm` (Llama, Qwen2, Mistral): HF's LlamaRMSNorm rounding: the sum rounded to the activation dtype, the
  mean square and the scaling in float32, rounded to the activation dtype, then times the weight in the
  activation dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..invariant import in_fixed_tiles


class AddLayerNorm(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.eps = eps

    def first(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)

    def add(self, x: torch.Tensor, y: torch.Tensor, *, quantize_for: bool = False) -> Any:
        if quantize_for:
            from ..kernels.fused_quant import add_layernorm_quant_rows
            from ..quant.fp8 import FP8_DTYPE, QuantizedRows

            q, s = add_layernorm_quant_rows(x, y, self.weight, self.bias, self.eps, FP8_DTYPE)
            return QuantizedRows(q, s, x.dtype)
        if x.device.type == "cuda":
            from ..kernels.add_layernorm import add_layernorm_

            return add_layernorm_(x, y, self.weight, self.bias, self.eps)
        x += y
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float, fixed_rows: bool = False) -> torch.Tensor:
    """HF's LlamaRMSNorm.forward. `fixed_rows` (the deterministic mode on CPU) computes the mean square on
    fixed-shape row tiles, so a row's value never depends on how many rows share the call."""
    dtype = x.dtype
    h = x.to(torch.float32)

    def mean_square(t: torch.Tensor) -> torch.Tensor:
        return t.pow(2).mean(-1, keepdim=True)

    variance = in_fixed_tiles(h, mean_square) if fixed_rows else mean_square(h)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(dtype)


class AddRMSNorm(nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps
        self.deterministic = False

    def first(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cuda":
            from ..kernels.add_rmsnorm import rmsnorm

            return rmsnorm(x, self.weight, self.eps)
        return rms_norm_reference(x, self.weight, self.eps, self.deterministic)

    def add(self, x: torch.Tensor, y: torch.Tensor, *, quantize_for: bool = False) -> torch.Tensor:
        del quantize_for  # the fp8 linears quantize their own input after an RMSNorm
        if x.device.type == "cuda":
            from ..kernels.add_rmsnorm import add_rmsnorm_

            return add_rmsnorm_(x, y, self.weight, self.eps)
        x += y
        return rms_norm_reference(x, self.weight, self.eps, self.deterministic)
