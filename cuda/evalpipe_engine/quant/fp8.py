"""fp8: E4M3 weights with one fp32 scale per output channel, s[n] = max_k |W[n, k]| / 448.

Prefill (M > small_m_max) on CUDA: per-token dynamic E4M3 activation scales (kernels/quant_act.py) and
`torch._scaled_mm` with row-wise scales (fp8 tensor cores), bias fused, bf16 out. Decode: weight-only, the
8-bit small-M kernel reads the E4M3 bytes and dequantizes in registers (activations stay in their dtype, so decode
is slightly more accurate than prefill; docs/quantization.md reports both). On CPU both run as the fp32 reference
(a documented slow fallback); on a GPU without fp8 tensor cores building an fp8 linear fails with `unsupported`.

Pre-quantized input: `forward_quantized(QuantizedRows)` (also `forward` given QuantizedRows) is the prefill path
without its quantization pass, for activations that the op producing them already quantized per token. The model's
fp8 prefill uses it (model.py `_add_norm`, `_mlp`): the residual add + LayerNorm before qkv and c_fc, and the GELU
before c_proj, write E4M3 rows and scales directly (kernels/fused_quant.py) with quantize_rows' rule, from the
same bf16-rounded values, so the result is the unfused path's up to GELU's fp32 last bits; only o_proj's input
(the attention output) is still quantized by `quantize_rows`, and decode (M <= small_m_max) is untouched.
The fusion is on unless the model's fp8_fused switch is off (fast_paths.py: the load op's option, by default
EVALPIPE_FP8_FUSED; `fused_prefill_enabled` is that default): its GPU tests passed on the H100 and it made the
whole-model fp8 prefill faster there (bench/results/fp8-model-fused*-h100-*.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..fast_paths import FUSED_ENV, env_switch
from .common import PerChannelLinear, QuantOptions, quantize_per_channel
from .modes import QuantError

QMAX = 448.0
FP8_DTYPE = torch.float8_e4m3fn
MIN_CAPABILITY = (8, 9)


def fused_prefill_enabled() -> bool:
    """The fp8_fused switch's environment default: model.py's fp8 prefill quantizes linear inputs in the op that
    produces them rather than in each linear, unless EVALPIPE_FP8_FUSED=0 (the A/B switch for benchmarks)."""
    return env_switch(FUSED_ENV)


@dataclass(frozen=True)
class QuantizedRows:
    """Activations already quantized per row (token): x ~= q * scale with q [M, K] float8_e4m3fn and scale [M, 1]
    fp32 (quant_act.quantize_rows' convention), and `dtype`, the activation dtype x had: a linear given these
    returns that dtype. Made by kernels/fused_quant.py's kernels (or quantize_rows) for Fp8Linear.forward_quantized."""

    q: torch.Tensor
    scale: torch.Tensor
    dtype: torch.dtype


def fp8_support_error(card: str, capability: tuple[int, int]) -> str | None:
    """The error message for fp8 on this card, or None when it has fp8 tensor cores."""
    if capability >= MIN_CAPABILITY:
        return None
    return (
        f"fp8 needs fp8 tensor cores (compute capability 8.9 or newer); {card} has {capability[0]}.{capability[1]}: "
        "use --quant int8 or bf16 on this card"
    )


def check_fp8_device(device: torch.device) -> None:
    """Raise QuantError(unsupported) when `device` is a GPU without fp8 tensor cores (CPU runs the reference)."""
    if device.type != "cuda":
        return
    msg = fp8_support_error(torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device))
    if msg is not None:
        raise QuantError(msg, error_type="unsupported")


def quantize_fp8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [N, K] float -> (q float8_e4m3fn [N, K], scale fp32 [N]) with weight ~= q * scale[:, None]."""
    return quantize_per_channel(weight, QMAX, FP8_DTYPE, round_to_integer=False)


class Fp8Linear(PerChannelLinear):
    mode = "fp8"

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        act_dtype: torch.dtype,
        options: QuantOptions,
        name: str = "",
    ) -> None:
        check_fp8_device(weight.device)
        n, k = weight.shape
        if weight.is_cuda and (n % 16 or k % 16):
            raise QuantError(
                f"fp8: tensor {name or '?'} is [{n}, {k}]; the fp8 tensor-core GEMM needs both sizes to be "
                "multiples of 16: use --quant int8 or bf16 for this model"
            )
        super().__init__(*quantize_fp8(weight), bias, act_dtype, options, name)

    def forward(self, x: torch.Tensor | QuantizedRows) -> torch.Tensor:
        """y = x @ W.T + b for a tensor x (any leading shape), or for QuantizedRows (see forward_quantized)."""
        if isinstance(x, QuantizedRows):
            return self.forward_quantized(x)
        return super().forward(x)

    def forward_quantized(self, rows: QuantizedRows) -> torch.Tensor:
        """y = (q * scale) @ W.T + b [M, out_features] in rows.dtype for rows quantized before the call: on CUDA the
        prefill GEMM (`torch._scaled_mm`, bias fused) without its quantize_rows pass, whatever M is; on CPU the
        fp32 reference of that product."""
        q, s = rows.q, rows.scale
        if q.dim() != 2 or q.shape[1] != self.in_features or q.dtype != FP8_DTYPE or s.shape != (q.shape[0], 1):
            raise QuantError(
                f"fp8 linear {self.name or '?'} takes quantized rows as float8_e4m3fn [M, {self.in_features}] with "
                f"fp32 scales [M, 1], got {q.dtype} {list(q.shape)} and scales {list(s.shape)}"
            )
        if q.shape[0] == 0:
            return q.new_empty((0, self.out_features), dtype=rows.dtype)
        if not q.is_cuda:
            return self._reference_quantized(q, s).to(rows.dtype)
        return self._scaled_mm(q, s, rows.dtype)

    def reference2d(self, x: torch.Tensor) -> torch.Tensor:
        from ..kernels.quant_act import quantize_rows_reference

        if x.shape[0] <= self.options.small_m_max:
            return self._add_bias(x.float() @ self.dequantized_weight().T)
        qx, sx = quantize_rows_reference(x, FP8_DTYPE)
        return self._reference_quantized(qx, sx)

    def _reference_quantized(self, qx: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
        """fp32 (qx * sx) @ W.T + b, the prefill GEMM's function."""
        y = (qx.float() @ self.qweight.float().T) * sx * self.scale[None, :]
        return self._add_bias(y)

    def _forward2d(self, x: torch.Tensor) -> torch.Tensor:
        y = self._decode2d(x)
        if y is not None:
            return y
        from ..kernels.quant_act import quantize_rows

        qx, sx = quantize_rows(x, FP8_DTYPE)
        return self._scaled_mm(qx, sx, x.dtype)

    def _scaled_mm(self, qx: torch.Tensor, sx: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        """The fp8 tensor-core GEMM: row-wise scales, bias in the epilogue, bf16 out (cast to `out_dtype`)."""
        bias = None if self.bias is None else self.bias.to(torch.bfloat16)
        y = torch._scaled_mm(
            qx, self.qweight.t(), scale_a=sx, scale_b=self.scale.view(1, -1), bias=bias, out_dtype=torch.bfloat16
        )
        return y if out_dtype == torch.bfloat16 else y.to(out_dtype)
