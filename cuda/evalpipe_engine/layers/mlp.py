"""The MLP blocks: GELU (StarCoder2: c_proj(gelu_tanh(c_fc(h)))) and SwiGLU (Llama, Qwen2, Mistral:
down(silu(gate(h)) * up(h)), gate and up as one fused linear). Their linears come from build_linear (the
quantization seam)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..quant.common import QuantLinearBase
from ..quant.linear import DenseLinear


class GeluMLP(nn.Module):
    def __init__(self, fc: nn.Module, proj: nn.Module) -> None:
        super().__init__()
        self.fc = fc
        self.proj = proj

    def forward(
        self, h: Any, *, fuse_gelu: bool, deterministic: bool, quantize_for: Callable[[nn.Module, int], bool]
    ) -> torch.Tensor:
        """`h` is a tensor, or on the fp8 prefill path the quant.fp8.QuantizedRows that the norm made for c_fc: then
        c_fc runs on the fp8 tensor cores (bias in its epilogue, bf16 out) and GELU is fused with the per-token
        quantization of c_proj's input (kernels/fused_quant.py) when `quantize_for(proj, rows)` says so."""
        fc, proj = self.fc, self.proj
        if not isinstance(h, torch.Tensor):
            g = fc(h)
            if quantize_for(proj, g.shape[0]):
                from ..kernels.fused_quant import gelu_quant_rows
                from ..quant.fp8 import FP8_DTYPE, QuantizedRows

                q, s = gelu_quant_rows(g, FP8_DTYPE)
                return proj(QuantizedRows(q, s, g.dtype))
            return proj(F.gelu(g, approximate="tanh"))
        if deterministic:
            return proj(F.gelu(fc(h), approximate="tanh"))
        if fuse_gelu and isinstance(fc, DenseLinear | QuantLinearBase):
            # GELU(tanh) in the product's epilogue: cuBLASLt's for many rows, the CUDA GEMV's for one
            h = fc.forward_gelu(h)
        else:
            h = F.gelu(fc(h), approximate="tanh")
        return proj(h)


class SwiGLUMLP(nn.Module):
    """down(silu(gate(h)) * up(h)) with gate and up in one linear [2 I, H] (rows: gate, then up), rounded as HF
    rounds: silu in the activation dtype, then the product."""

    def __init__(self, gate_up: nn.Module, down: nn.Module, intermediate: int) -> None:
        super().__init__()
        self.gate_up = gate_up
        self.down = down
        self.intermediate = intermediate

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gu = self.gate_up(h)
        i = self.intermediate
        return self.down(F.silu(gu[..., :i]) * gu[..., i:])
