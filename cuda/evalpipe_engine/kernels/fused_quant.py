"""Per-token activation quantization fused into the op that produces the activation (Triton), for the fp8 (and
int8 W8A8) prefill linears: the row is quantized while it is still in registers instead of being written in the
activation dtype and read back by quant_act.quantize_rows.

- `add_layernorm_quant_rows`: x <- x + y (the residual, in place, as add_layernorm.add_layernorm_), h =
  LayerNorm(x) * w + b, then h quantized per row -> (q [M, K], s fp32 [M, 1]). For the qkv and c_fc inputs.
- `gelu_quant_rows`: gelu_tanh(h) quantized per row -> (q, s). For the c_proj input (c_fc's bias is already added
  in its `torch._scaled_mm` epilogue, so there is no bias to fold in here).

Rounding: each kernel rounds its fp32 result (LayerNorm, GELU) to the input's dtype (bf16 on the GPU) and
quantizes that, exactly what the unfused path does (`quantize_rows(add_layernorm_(x, y, w, b, eps))`,
`quantize_rows(gelu(h))`), with quantize_rows' own rule (quant_act.scale_row: s = max|h| / QMAX, a zero row gets
s = 1, int8 rounds half away from zero, fp8 clamps to +-448 and rounds to nearest even). So the fused prefill
computes the function the unfused one computes and the measured fp8 quality numbers still hold: the LayerNorm
kernel is the same arithmetic as add_layernorm_'s with the same launch shape (bit-identical results on the GPU),
and GELU differs from PyTorch's only in its fp32 last bits (h * sigmoid(2u) instead of 0.5 h (1 + tanh u)).
Quantizing the fp32 values instead would skip one rounding (bf16's 2^-9 relative step under E4M3's 2^-4) and
make the fused path differ from the unfused one in many elements; it buys nothing measurable.

The `*_reference` functions are the same functions in PyTorch (fp32 math); tests hold the kernels to them and to
the unfused kernels (cuda/tests/test_fused_quant.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .add_layernorm import add_layernorm_row, row_kernel_warps
from .quant_act import QMAX, quantize_rows_reference, scale_row


@triton.jit
def _add_ln_quant_kernel(
    X, Y, W, B, Q, S, n_cols, stride_x, stride_y, stride_q, eps,
    QMAX: tl.constexpr, TO_INT8: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # the residual add and LayerNorm of add_layernorm_ itself, rounded to the activation dtype as the unfused path
    # stores it (masked lanes are 0)
    row = tl.program_id(0).to(tl.int64)
    h16, offs, ok = add_layernorm_row(X, Y, W, B, row, n_cols, stride_x, stride_y, eps, BLOCK)
    h = h16.to(tl.float32)
    q, scale = scale_row(h, QMAX, TO_INT8)
    tl.store(Q + row * stride_q + offs, q.to(Q.dtype.element_ty), mask=ok)
    tl.store(S + row, scale)


@triton.jit
def _gelu_quant_kernel(
    H, Q, S, n_cols, stride_h, stride_q, QMAX: tl.constexpr, TO_INT8: tl.constexpr, BLOCK: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    ok = offs < n_cols
    h = tl.load(H + row * stride_h + offs, mask=ok, other=0.0)
    v = h.to(tl.float32)
    u = 0.7978845608028654 * (v + 0.044715 * v * v * v)  # sqrt(2 / pi) (v + 0.044715 v^3)
    # 0.5 v (1 + tanh u) = v * sigmoid(2u): no cancellation for negative v, and exp overflow gives -0, not NaN
    g = (v / (1.0 + tl.exp(-2.0 * u))).to(h.dtype).to(tl.float32)
    q, scale = scale_row(g, QMAX, TO_INT8)
    tl.store(Q + row * stride_q + offs, q.to(Q.dtype.element_ty), mask=ok)
    tl.store(S + row, scale)


def _outputs(x: torch.Tensor, qdtype: torch.dtype, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    if qdtype not in QMAX:
        raise ValueError(f"{op}: unsupported target dtype {qdtype}: use torch.int8 or torch.float8_e4m3fn")
    m, k = x.shape
    q = torch.empty((m, k), device=x.device, dtype=qdtype)
    s = torch.empty((m, 1), device=x.device, dtype=torch.float32)
    return q, s


def add_layernorm_quant_rows(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, qdtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] updated in place to x + y; returns LayerNorm(x) quantized per row: (q [M, K] of `qdtype`, int8 or
    float8_e4m3fn, s [M, 1] fp32) with LayerNorm(x) ~= q * s. Equals quantize_rows(add_layernorm_(x, y, w, b, eps))."""
    if x.dim() != 2 or y.shape != x.shape or x.stride(1) != 1 or y.stride(1) != 1:
        raise ValueError(
            f"add_layernorm_quant_rows: x {tuple(x.shape)} and y {tuple(y.shape)} must be matching 2-D tensors, "
            "rows contiguous"
        )
    q, s = _outputs(x, qdtype, "add_layernorm_quant_rows")
    n, c = x.shape
    block = triton.next_power_of_2(c)
    warps = row_kernel_warps(block, x.device)  # add_layernorm_'s launch shape: the same LayerNorm bits
    _add_ln_quant_kernel[(n,)](
        x, y, weight, bias, q, s, c, x.stride(0), y.stride(0), q.stride(0), eps,
        QMAX=QMAX[qdtype], TO_INT8=qdtype == torch.int8, BLOCK=block, num_warps=warps,
    )  # fmt: skip
    return q, s


def gelu_quant_rows(h: torch.Tensor, qdtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """h [M, K] -> gelu_tanh(h) quantized per row: (q [M, K] of `qdtype`, s [M, 1] fp32) with gelu(h) ~= q * s.
    Equals quantize_rows(F.gelu(h, approximate="tanh")) up to GELU's fp32 last bits."""
    if h.dim() != 2:
        raise ValueError(f"gelu_quant_rows: h must be 2-D, got {tuple(h.shape)}")
    if h.stride(1) != 1:
        h = h.contiguous()
    q, s = _outputs(h, qdtype, "gelu_quant_rows")
    m, k = h.shape
    block = triton.next_power_of_2(k)
    warps = 1 if not h.is_cuda else (4 if block <= 4096 else 8 if block <= 8192 else 16)
    _gelu_quant_kernel[(m,)](
        h, q, s, k, h.stride(0), q.stride(0), QMAX=QMAX[qdtype], TO_INT8=qdtype == torch.int8, BLOCK=block,
        num_warps=warps,
    )  # fmt: skip
    return q, s


def add_layernorm_quant_rows_reference(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, qdtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same function in PyTorch: x += y in place, LayerNorm in fp32 rounded to x's dtype, then
    quantize_rows_reference."""
    x += y
    h = F.layer_norm(x.float(), (x.shape[-1],), weight.float(), bias.float(), eps).to(x.dtype)
    return quantize_rows_reference(h, qdtype)


def gelu_quant_rows_reference(h: torch.Tensor, qdtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The same function in PyTorch: GELU (tanh) in fp32 rounded to h's dtype, then quantize_rows_reference."""
    return quantize_rows_reference(F.gelu(h.float(), approximate="tanh").to(h.dtype), qdtype)
