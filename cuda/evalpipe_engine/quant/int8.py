"""int8: symmetric per-output-channel weights, q = round(W / s), s[n] = max_k |W[n, k]| / 127.

Decode (M <= small_m_max): weight-only, kernels/quant_smallm.py streams the int8 bytes (half of bf16's) and
dequantizes in registers. Prefill: "dequant" (default; weight-only, exactly the decode function) dequantizes to
the activation dtype in one Triton pass and runs cuBLAS; "w8a8" is LLM.int8's vector-wise quantization (per-token
int8 activations x per-channel int8 weights on the int8 tensor cores), optionally with its outlier decomposition.
"""

from __future__ import annotations

import torch

from .common import PerChannelLinear, QuantOptions, fp32_matmul_precision, quantize_per_channel

QMAX = 127.0


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [N, K] float -> (q int8 [N, K], scale fp32 [N]) with weight ~= q * scale[:, None]."""
    return quantize_per_channel(weight, QMAX, torch.int8, round_to_integer=True)


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale[:, None]


class Int8Linear(PerChannelLinear):
    mode = "int8"

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        act_dtype: torch.dtype,
        options: QuantOptions,
        name: str = "",
    ) -> None:
        super().__init__(*quantize_int8(weight), bias, act_dtype, options, name)

    def _outlier_columns(self, x: torch.Tensor) -> torch.Tensor | None:
        t = self.options.int8_outlier_threshold
        if t is None:
            return None
        cols = (x.abs() > t).any(dim=0).nonzero().flatten()
        return cols if cols.numel() > 0 else None

    def _invariant2d(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic mode, CUDA prefill: the W8A8 product for every M. It is batch-invariant as it stands: each
        row is quantized on its own, the int32 accumulation is exact whatever the tiles, and the epilogue is per
        element. Decode steps (and outlier decomposition, and CPU) take the weight-only product."""
        from ..invariant import in_decode_phase

        w8a8 = self.options.int8_prefill == "w8a8" and self.options.int8_outlier_threshold is None
        if x.is_cuda and w8a8 and not in_decode_phase():
            from ..kernels.int8_gemm import w8a8_linear
            from ..kernels.quant_act import quantize_rows

            qx, sx = quantize_rows(x, torch.int8)
            return w8a8_linear(qx, sx, self.qweight, self.scale, self.bias, x.dtype)
        return super()._invariant2d(x)

    def reference2d(self, x: torch.Tensor) -> torch.Tensor:
        from ..kernels.quant_act import quantize_rows_reference

        xf = x.float()
        if x.shape[0] <= self.options.small_m_max or self.options.int8_prefill == "dequant":
            return self._add_bias(xf @ self.dequantized_weight().T)
        cols = self._outlier_columns(x)
        x_reg = x if cols is None else x.index_fill(1, cols, 0)
        qx, sx = quantize_rows_reference(x_reg, torch.int8)
        y = (qx.float() @ self.qweight.float().T) * sx * self.scale[None, :]
        if cols is not None:
            y = y + xf[:, cols] @ self.dequantized_weight()[:, cols].T
        return self._add_bias(y)

    def _prefill_dense_weight(self, dtype: torch.dtype) -> torch.Tensor | None:
        if self.options.int8_prefill != "dequant":
            return None
        from ..kernels.int8_dequant import int8_dequantize

        return int8_dequantize(self.qweight, self.scale, dtype)

    def _forward2d(self, x: torch.Tensor) -> torch.Tensor:
        y = self._decode2d(x)
        if y is not None:
            return y
        w = self._prefill_dense_weight(x.dtype)
        if w is not None:
            with fp32_matmul_precision(self.options.fp32_matmul):
                return torch.nn.functional.linear(x, w, self.bias)
        from ..kernels.int8_gemm import w8a8_linear
        from ..kernels.quant_act import quantize_rows

        cols = self._outlier_columns(x)
        x_reg = x if cols is None else x.index_fill(1, cols, 0)
        qx, sx = quantize_rows(x_reg, torch.int8)
        y = w8a8_linear(qx, sx, self.qweight, self.scale, self.bias, x.dtype)
        if cols is not None:
            w_cols = self.qweight[:, cols].to(x.dtype) * self.scale[:, None].to(x.dtype)
            y = y + x[:, cols] @ w_cols.T
        return y
