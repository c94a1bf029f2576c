"""Weight quantization: int8, nf4 and fp8 linears with their kernels and reference paths.

Entry point: `build_linear(weight, bias, mode, compute_dtype, name=..., options=QuantOptions(...))`."""

from .common import QuantLinearBase, QuantOptions
from .linear import build_linear, linear_weight_bytes
from .modes import COMPUTE_DTYPES, DENSE_DTYPES, QUANT_MODES, QuantError, activation_dtype, check_mode

__all__ = [
    "COMPUTE_DTYPES",
    "DENSE_DTYPES",
    "QUANT_MODES",
    "QuantError",
    "QuantLinearBase",
    "QuantOptions",
    "activation_dtype",
    "build_linear",
    "check_mode",
    "linear_weight_bytes",
]
