"""fp8: E4M3 weights with one fp32 scale per output channel, s[n] = max_k |W[n, k]| / 448.

Prefill (M > small_m_max) on CUDA: per-token dynamic E4M3 activation scales (kernels/quant_act.py) and
`torch._scaled_mm` with row-wise scales (fp8 tensor cores), bias fused, bf16 out. Decode: weight-only, the
8-bit small-M kernel reads the E4M3 bytes and dequantizes in registers (activations stay in their dtype, so decode
is slightly more accurate than prefill; docs/quantization.md reports both). On CPU both run as the fp32 reference
(a documented slow fallback); on a GPU without fp8 tensor cores building an fp8 linear fails with `unsupported`.
"""

from __future__ import annotations

import torch

from .common import QuantLinearBase, QuantOptions
from .modes import QuantError

QMAX = 448.0
FP8_DTYPE = torch.float8_e4m3fn
MIN_CAPABILITY = (8, 9)
_CHUNK_ELEMENTS = 1 << 24


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
    n, k = weight.shape
    q = torch.empty((n, k), dtype=FP8_DTYPE, device=weight.device)
    scale = torch.empty((n,), dtype=torch.float32, device=weight.device)
    rows = max(1, _CHUNK_ELEMENTS // k)
    for r0 in range(0, n, rows):
        w = weight[r0 : r0 + rows].float()
        amax = w.abs().amax(dim=1)
        s = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))
        q[r0 : r0 + rows] = (w / s[:, None]).clamp_(-QMAX, QMAX).to(FP8_DTYPE)
        scale[r0 : r0 + rows] = s
    return q, scale


class Fp8Linear(QuantLinearBase):
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
        super().__init__(n, k, bias, act_dtype, options, name)
        q, scale = quantize_fp8(weight)
        self.qweight: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)

    def dequantized_weight(self) -> torch.Tensor:
        return self.qweight.float() * self.scale[:, None]

    def reference2d(self, x: torch.Tensor) -> torch.Tensor:
        from ..kernels.quant_act import quantize_rows_reference

        if x.shape[0] <= self.options.small_m_max:
            return self._add_bias(x.float() @ self.dequantized_weight().T)
        qx, sx = quantize_rows_reference(x, FP8_DTYPE)
        y = (qx.float() @ self.qweight.float().T) * sx * self.scale[None, :]
        return self._add_bias(y)

    def _forward2d(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            from ..kernels.gemv_cuda import gemv

            y = gemv("fp8", x, self.qweight, self.scale, self.bias)
            if y is not None:
                return y
        if x.shape[0] <= self.options.small_m_max:
            from ..kernels.quant_smallm import w8_smallm_linear

            return w8_smallm_linear(x, self.qweight, self.scale, self.bias, self.options.fp32_matmul)
        from ..kernels.quant_act import quantize_rows

        qx, sx = quantize_rows(x, FP8_DTYPE)
        bias = None if self.bias is None else self.bias.to(torch.bfloat16)
        y = torch._scaled_mm(
            qx, self.qweight.t(), scale_a=sx, scale_b=self.scale.view(1, -1), bias=bias, out_dtype=torch.bfloat16
        )
        return y if x.dtype == torch.bfloat16 else y.to(x.dtype)
