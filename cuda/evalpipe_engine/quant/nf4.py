"""nf4: 4-bit NormalFloat, the number format of QLoRA / bitsandbytes.

Each row of W [N, K] is cut into blocks of 64 along K (the last block zero-padded); a block stores its absmax
(fp32) and, per element, the index of the nearest of the 16 NF4 code values to w / absmax. Two indices share a
byte, the even element in the high nibble (bitsandbytes' order). Optional double quantization stores the absmax
values as int8 around their mean with one fp32 scale per 256 of them.

Decode at one row: kernels/nf4_smallm.py's GEMV dequantizes in registers (0.5 + 4/64 bytes read per weight).
Two rows or more: kernels/nf4_dequant.py writes the layer's dense weight in the compute dtype once, then cuBLAS
(tensor cores; TF32 for fp32 compute unless fp32_matmul="ieee"). nf4_smallm's tensor-core kernel for 2..64 rows is
kept behind QuantOptions.nf4_small_m_dot (correct, but slow on the H100).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import QuantLinearBase, QuantOptions, fp32_matmul_precision

BLOCK = 64
DQ_GROUP = 256
# The 16 NF4 values of QLoRA (Dettmers et al. 2023, appendix E) as bitsandbytes ships them, index order.
NF4_CODE: tuple[float, ...] = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)
ZERO_INDEX = 7
_CHUNK_ELEMENTS = 1 << 23


def nf4_code(device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.tensor(NF4_CODE, dtype=torch.float32, device=device)


@dataclass
class Nf4Weight:
    packed: torch.Tensor  # uint8 [N, Kp/2]
    absmax: torch.Tensor  # fp32 [N, Kp/64]
    k: int


def quantize_nf4(weight: torch.Tensor) -> Nf4Weight:
    n, k = weight.shape
    kp = -(-k // BLOCK) * BLOCK
    code = nf4_code(weight.device)
    mid = (code[1:] + code[:-1]) / 2
    packed = torch.empty((n, kp // 2), dtype=torch.uint8, device=weight.device)
    absmax = torch.empty((n, kp // BLOCK), dtype=torch.float32, device=weight.device)
    rows = max(1, _CHUNK_ELEMENTS // kp)
    for r0 in range(0, n, rows):
        w = weight[r0 : r0 + rows].float()
        if kp != k:
            w = torch.nn.functional.pad(w, (0, kp - k))
        blocks = w.view(w.shape[0], kp // BLOCK, BLOCK)
        amax = blocks.abs().amax(dim=2)
        safe = torch.where(amax > 0, amax, torch.ones_like(amax))
        idx = torch.bucketize(blocks / safe[:, :, None], mid).to(torch.uint8).view(w.shape[0], kp)
        packed[r0 : r0 + rows] = (idx[:, 0::2] << 4) | idx[:, 1::2]
        absmax[r0 : r0 + rows] = amax
    return Nf4Weight(packed, absmax, k)


def unpack_indices(packed: torch.Tensor) -> torch.Tensor:
    """uint8 [N, Kp/2] -> code indices int64 [N, Kp]."""
    hi = (packed >> 4).long()
    lo = (packed & 15).long()
    return torch.stack((hi, lo), dim=2).view(packed.shape[0], -1)


def dequantize_nf4(packed: torch.Tensor, absmax: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: fp32 [N, k]."""
    code = nf4_code(packed.device)
    vals = code[unpack_indices(packed)]
    n, kp = vals.shape
    vals = (vals.view(n, kp // BLOCK, BLOCK) * absmax[:, :, None]).view(n, kp)
    return vals[:, :k].contiguous()


def double_quantize(absmax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """absmax fp32 [N, B] -> (q int8 [N, B], scale fp32 [ceil(N*B/256)], offset fp32 []): a ~= q * scale + offset."""
    flat = absmax.flatten()
    offset = flat.mean()
    pad = -flat.numel() % DQ_GROUP
    centred = torch.nn.functional.pad(flat - offset, (0, pad)).view(-1, DQ_GROUP)
    amax = centred.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(centred / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.flatten()[: flat.numel()].view_as(absmax).contiguous(), scale, offset


def double_dequantize(q: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    flat = q.flatten().float()
    pad = -flat.numel() % DQ_GROUP
    groups = torch.nn.functional.pad(flat, (0, pad)).view(-1, DQ_GROUP) * scale[:, None]
    return (groups.flatten()[: flat.numel()] + offset).view(q.shape)


class Nf4Linear(QuantLinearBase):
    mode = "nf4"

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        act_dtype: torch.dtype,
        options: QuantOptions,
        name: str = "",
    ) -> None:
        super().__init__(weight.shape[0], weight.shape[1], bias, act_dtype, options, name)
        qw = quantize_nf4(weight)
        self.packed: torch.Tensor
        self.code: torch.Tensor
        self.register_buffer("packed", qw.packed)
        self.register_buffer("code", nf4_code(weight.device))
        self.double_quant = options.nf4_double_quant
        if self.double_quant:
            q, s, off = double_quantize(qw.absmax)
            self.register_buffer("absmax_q", q)
            self.register_buffer("absmax_scale", s)
            self.register_buffer("absmax_offset", off)
        else:
            self.register_buffer("absmax_fp32", qw.absmax)

    def absmax(self) -> torch.Tensor:
        if self.double_quant:
            return double_dequantize(self.absmax_q, self.absmax_scale, self.absmax_offset)
        return self.absmax_fp32

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize_nf4(self.packed, self.absmax(), self.in_features)

    def reference2d(self, x: torch.Tensor) -> torch.Tensor:
        return self._add_bias(x.float() @ self.dequantized_weight().T)

    def _prefill_dense_weight(self, dtype: torch.dtype, absmax: torch.Tensor | None = None) -> torch.Tensor:
        from ..kernels.nf4_dequant import nf4_dequantize

        return nf4_dequantize(
            self.packed, self.absmax() if absmax is None else absmax, self.code, self.in_features, dtype
        )

    def invariant_weight(self, dtype: torch.dtype) -> torch.Tensor:
        return self._prefill_dense_weight(dtype)  # the Triton dequantization, straight to `dtype`

    def gemv_row(self, x: torch.Tensor, *, gelu: bool, absmax: torch.Tensor | None = None) -> torch.Tensor | None:
        from ..kernels.gemv_cuda import gemv

        absmax = self.absmax() if absmax is None else absmax
        return gemv(
            "nf4", x, self.packed, absmax, self.bias, code=self.code, k=self.in_features, rtc=self.cuda_rtc, gelu=gelu
        )

    def _forward2d(self, x: torch.Tensor) -> torch.Tensor:
        absmax = self.absmax()
        m = x.shape[0]
        if m == 1:
            y = self.gemv_row(x, gelu=False, absmax=absmax)
            if y is not None:
                return y
        if m == 1 or (self.options.nf4_small_m_dot and m <= self.options.small_m_max):
            from ..kernels.nf4_smallm import nf4_smallm_linear

            return nf4_smallm_linear(x, self.packed, absmax, self.code, self.bias, self.options.fp32_matmul)
        w = self._prefill_dense_weight(x.dtype, absmax)
        with fp32_matmul_precision(self.options.fp32_matmul):
            return torch.nn.functional.linear(x, w, self.bias)
