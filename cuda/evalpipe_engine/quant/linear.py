"""`build_linear` is the one seam between the model and quantization: the model hands over a dense weight and
bias, and gets back a module that computes y = x @ W.T + b in the requested mode, weights kept quantized."""

from __future__ import annotations

import torch
from torch import nn

from ..invariant import invariant_linear
from ..kernels.gemv_cuda import gemv
from .common import QuantLinearBase, QuantOptions, check_weight, module_bytes
from .fp8 import Fp8Linear
from .int8 import Int8Linear
from .modes import DENSE_DTYPES, QuantError, check_mode
from .nf4 import Nf4Linear

_QUANTIZED: dict[str, type[QuantLinearBase]] = {"int8": Int8Linear, "nf4": Nf4Linear, "fp8": Fp8Linear}


class DenseLinear(nn.Module):
    """y = x @ W.T + b in the mode's dtype: cuBLAS, except one bf16/fp16 row on CUDA, which goes through the CUDA
    GEMV (kernels/gemv_cuda.py, the cuda_rtc fast path: decode at batch 1 is a weight read), and the deterministic
    mode, whose products are batch-invariant (invariant.py)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.to(dtype), requires_grad=False)
        self.invariant = False  # the deterministic mode's batch-invariant products (invariant.py)
        self.cuda_rtc: bool | None = None  # the cuda_rtc fast-path switch (fast_paths.py); None: EVALPIPE_CUDA_RTC

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.invariant:
            return invariant_linear(x, self.weight, self.bias)
        y = gemv("dense", x, self.weight, None, self.bias, rtc=self.cuda_rtc)  # None unless one CUDA row
        return nn.functional.linear(x, self.weight, self.bias) if y is None else y

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """gelu_tanh(x @ W.T + b) with the activation fused into the product where one can take it: one row in the
        CUDA GEMV's epilogue, more rows (with a bias) in cuBLASLt's; otherwise GELU after the product."""
        if not self.invariant:
            y = gemv("dense", x, self.weight, None, self.bias, rtc=self.cuda_rtc, gelu=True)
            if y is not None:
                return y
            if self.bias is not None and x.dim() == 2 and x.is_cuda:
                return torch._addmm_activation(self.bias, x, self.weight.t(), use_gelu=True)
        return nn.functional.gelu(self(x), approximate="tanh")


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
