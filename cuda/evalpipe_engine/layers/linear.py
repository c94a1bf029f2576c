"""The linear layer: every projection of every native model is built here, through quant.linear.build_linear (the
one quantization seam: fp32/fp16/bf16 dense, int8/nf4/fp8 quantized). Projections that read the same input are
merged into one linear (q, k, v; gate, up) so that one GEMM (or one quantized GEMV in decode) computes them."""

from __future__ import annotations

import torch
from torch import nn

from ..quant.linear import DenseLinear, build_linear

__all__ = ["DenseLinear", "build_linear", "merged_linear"]


def merged_linear(
    weights: list[torch.Tensor], biases: list[torch.Tensor] | None, mode: str, act: torch.dtype, *, name: str
) -> nn.Module:
    """One linear whose output rows are the given weights' rows in order (and their biases, when given)."""
    w = torch.cat(weights) if len(weights) > 1 else weights[0]
    b = None if biases is None else (torch.cat(biases) if len(biases) > 1 else biases[0])
    return build_linear(w, b, mode, act, name=name)
