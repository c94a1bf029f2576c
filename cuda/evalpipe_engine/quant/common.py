"""What every quantized linear shares: option set, shape handling, weight-byte accounting."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..invariant import invariant_linear
from .modes import QuantError

INT8_PREFILL_STRATEGIES: tuple[str, ...] = ("dequant", "w8a8")


@dataclass(frozen=True)
class QuantOptions:
    """Knobs of the quantized modes. Defaults are the measured choices in docs/quantization.md.

    small_m_max: at most this many rows (tokens) take the small-M (decode) kernels; more take the prefill path.
    int8_prefill: "w8a8" (default; LLM.int8 vector-wise: per-token int8 activations, int8 tensor-core GEMM, fused
        epilogue; 0.79x bf16's prefill time) or "dequant" (weight-only, the decode path's function: dequantize to
        the activation dtype in a Triton pass, then cuBLAS; about 1.04-1.10x bf16's time).
    int8_outlier_threshold: with "w8a8", input features whose |x| exceeds this in any row go through a dense
        side product instead (LLM.int8 outlier decomposition; 6.0 in the paper). None turns it off.
    nf4_double_quant: store the NF4 absmax scales as int8 with one fp32 scale per 256 (QLoRA double quantization).
    nf4_small_m_dot: for 2..small_m_max rows use nf4_smallm's split-K tensor-core kernel instead of dequantize +
        cuBLAS. Off: on the H100 it measured 22 ms for the 121 StarCoder2-3B linears at M = 32 (bf16: 2.7 ms).
    fp32_matmul: for fp32 activations on CUDA in the prefill path, "tf32" (tensor cores, 10-bit mantissa inputs)
        or "ieee" (exact fp32, many times slower).
    """

    small_m_max: int = 32
    int8_prefill: str = "w8a8"
    int8_outlier_threshold: float | None = None
    nf4_double_quant: bool = False
    nf4_small_m_dot: bool = False
    fp32_matmul: str = "tf32"

    def __post_init__(self) -> None:
        if self.int8_prefill not in INT8_PREFILL_STRATEGIES:
            raise QuantError(
                f"unknown int8 prefill strategy {self.int8_prefill!r}: use one of {', '.join(INT8_PREFILL_STRATEGIES)}"
            )
        if self.fp32_matmul not in ("tf32", "ieee"):
            raise QuantError(f"unknown fp32 matmul precision {self.fp32_matmul!r}: use tf32 or ieee")
        if not 0 <= self.small_m_max <= 64:
            raise QuantError(f"small_m_max must be in 0..64, got {self.small_m_max}")
        if self.int8_outlier_threshold is not None and self.int8_outlier_threshold <= 0:
            raise QuantError(f"int8 outlier threshold must be positive, got {self.int8_outlier_threshold}")


def check_weight(weight: torch.Tensor, bias: torch.Tensor | None, mode: str, name: str) -> None:
    if weight.dim() != 2 or weight.shape[0] == 0 or weight.shape[1] == 0:
        raise QuantError(
            f"{mode}: weight {name or '?'} must be a non-empty 2-D [out, in] matrix, got {list(weight.shape)}"
        )
    if not weight.is_floating_point():
        raise QuantError(f"{mode}: weight {name or '?'} must be floating point to quantize, got {weight.dtype}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise QuantError(f"{mode}: bias of {name or '?'} has shape {list(bias.shape)}, expected [{weight.shape[0]}]")
    if not torch.isfinite(weight).all():
        raise QuantError(f"{mode}: weight {name or '?'} holds NaN or inf; the checkpoint is damaged")


def module_bytes(module: nn.Module) -> int:
    """Bytes of every tensor the module keeps (parameters and buffers), i.e. what it holds in device memory."""
    seen: set[int] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


class fp32_matmul_precision:
    """Context manager: let (or forbid) fp32 matmuls on CUDA use TF32 tensor cores, restoring the old setting."""

    def __init__(self, precision: str) -> None:
        self.allow = precision == "tf32"
        self.old = False

    def __enter__(self) -> None:
        self.old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.allow

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32 = self.old


class QuantLinearBase(nn.Module):
    """y = x @ W.T + b over any leading shape; subclasses implement `_forward2d` (dispatch) and `reference2d`."""

    mode: str = ""

    def __init__(
        self,
        out_features: int,
        in_features: int,
        bias: torch.Tensor | None,
        act_dtype: torch.dtype,
        options: QuantOptions,
        name: str,
    ) -> None:
        super().__init__()
        self.out_features = out_features
        self.in_features = in_features
        self.act_dtype = act_dtype
        self.options = options
        self.name = name
        self.bias: torch.Tensor | None
        self.register_buffer("bias", None if bias is None else bias.detach().to(act_dtype).contiguous())
        self.invariant = False  # the deterministic mode: the weight-only function for every M (invariant.py)
        self.cuda_rtc: bool | None = None  # the cuda_rtc fast-path switch (fast_paths.py); None: EVALPIPE_CUDA_RTC

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise QuantError(
                f"{self.mode} linear {self.name or '?'} expects {self.in_features} input features, got {x.shape[-1]}"
            )
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] == 0:
            return x.new_empty((*lead, self.out_features))
        if self.invariant:
            y = self._invariant2d(x2)
        else:
            y = self._forward2d(x2) if x2.is_cuda else self.reference2d(x2).to(x.dtype)
        return y.reshape(*lead, self.out_features)

    def _invariant2d(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic mode's product: x @ dequant(W).T + b, batch-invariant (invariant.py). On CPU in fp32
        (reference2d's weight-only function), on CUDA in the activation dtype with the weight dequantized first."""
        if not x.is_cuda:
            bias = None if self.bias is None else self.bias.float()
            return invariant_linear(x.float(), self.dequantized_weight(), bias).to(x.dtype)
        return invariant_linear(x, self.invariant_weight(x.dtype), self.bias)

    def invariant_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dequantized weight [out, in] in `dtype` that the deterministic mode multiplies by on CUDA."""
        return self.dequantized_weight().to(dtype)

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """gelu_tanh(x @ W.T + b); prefill paths that end in cuBLAS fuse bias + GELU into the GEMM's epilogue
        (as the dense model does for c_fc), one row fuses it into the CUDA GEMV's, the others apply GELU after."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        if not self.invariant:
            y = self.gemv_row(x2, gelu=True)  # None unless one CUDA row it can take
            if y is not None:
                return y.reshape(*lead, self.out_features)
        if x2.is_cuda and x2.shape[0] > self.options.small_m_max and self.bias is not None and not self.invariant:
            w = self._prefill_dense_weight(x2.dtype)
            if w is not None:
                with fp32_matmul_precision(self.options.fp32_matmul):
                    y = torch._addmm_activation(self.bias, x2, w.t(), use_gelu=True)
                return y.reshape(*lead, self.out_features)
        return nn.functional.gelu(self(x), approximate="tanh")

    def _prefill_dense_weight(self, dtype: torch.dtype) -> torch.Tensor | None:
        """The dense weight the prefill path hands to cuBLAS, or None when the prefill path is not dense."""
        return None

    def gemv_row(self, x: torch.Tensor, *, gelu: bool) -> torch.Tensor | None:
        """One row ([1, in] on CUDA) through the CUDA GEMV (kernels/gemv_cuda.py), GELU(tanh) in its epilogue when
        asked; None where it cannot run (the caller takes its Triton or cuBLAS path)."""
        return None

    def _forward2d(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reference2d(self, x: torch.Tensor) -> torch.Tensor:
        """The same function in fp32 PyTorch ops (dequantize, then matmul); also the CPU path. Returns fp32."""
        raise NotImplementedError

    def dequantized_weight(self) -> torch.Tensor:
        """W as fp32 [out, in], exactly what the kernels multiply by."""
        raise NotImplementedError

    def weight_bytes(self) -> int:
        return module_bytes(self)

    def extra_repr(self) -> str:
        has_bias = self.bias is not None
        return f"{self.in_features} -> {self.out_features}, mode={self.mode}, act={self.act_dtype}, bias={has_bias}"

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias.float()


_CHUNK_ELEMENTS = 1 << 24  # weight elements quantized at once: bounds the fp32 temporaries for large layers


def quantize_per_channel(
    weight: torch.Tensor, qmax: float, dtype: torch.dtype, *, round_to_integer: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [N, K] float -> (q [N, K] of `dtype`, scale fp32 [N]) with weight ~= q * scale[:, None] and
    scale[n] = max_k |W[n, k]| / qmax (1 for an all-zero row). int8 rounds to the nearest integer; fp8 lets the
    cast round to the nearest E4M3 value."""
    n, k = weight.shape
    q = torch.empty((n, k), dtype=dtype, device=weight.device)
    scale = torch.empty((n,), dtype=torch.float32, device=weight.device)
    rows = max(1, _CHUNK_ELEMENTS // k)
    for r0 in range(0, n, rows):
        w = weight[r0 : r0 + rows].float()
        amax = w.abs().amax(dim=1)
        s = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
        scaled = w / s[:, None]
        if round_to_integer:
            scaled = torch.round(scaled)
        q[r0 : r0 + rows] = scaled.clamp_(-qmax, qmax).to(dtype)
        scale[r0 : r0 + rows] = s
    return q, scale


class PerChannelLinear(QuantLinearBase):
    """8-bit weights with one fp32 scale per output channel (int8, fp8): their storage, dequantization and decode
    path. Decode (M <= small_m_max rows): weight-only, dequantized in registers; one row goes through the
    run-time-compiled CUDA GEMV (kernels/gemv_cuda.py) when it can run, else the Triton small-M kernels.
    Subclasses give the prefill path."""

    def __init__(
        self,
        q: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor | None,
        act_dtype: torch.dtype,
        options: QuantOptions,
        name: str,
    ) -> None:
        super().__init__(q.shape[0], q.shape[1], bias, act_dtype, options, name)
        self.qweight: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)

    def dequantized_weight(self) -> torch.Tensor:
        return self.qweight.float() * self.scale[:, None]

    def _invariant2d(self, x: torch.Tensor) -> torch.Tensor:
        """On CUDA the weight goes as stored with its per-channel scale: decode steps read it in the split-K kernel
        (converted tile by tile, no dequantized copy per step); prefill dequantizes once per product."""
        if not x.is_cuda:
            return super()._invariant2d(x)
        return invariant_linear(x, self.qweight, self.bias, scale=self.scale)

    def gemv_row(self, x: torch.Tensor, *, gelu: bool) -> torch.Tensor | None:
        from ..kernels.gemv_cuda import gemv

        return gemv(self.mode, x, self.qweight, self.scale, self.bias, rtc=self.cuda_rtc, gelu=gelu)

    def _decode2d(self, x: torch.Tensor) -> torch.Tensor | None:
        """The decode product for M <= small_m_max rows on CUDA, None for more rows (the prefill path)."""
        if x.shape[0] == 1:
            y = self.gemv_row(x, gelu=False)
            if y is not None:
                return y
        if x.shape[0] <= self.options.small_m_max:
            from ..kernels.quant_smallm import w8_smallm_linear

            return w8_smallm_linear(x, self.qweight, self.scale, self.bias, self.options.fp32_matmul)
        return None
