"""The precision modes the engine accepts (`--quant`) and the compute dtypes nf4 may use."""

from __future__ import annotations

import torch

QUANT_MODES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8", "nf4", "fp8")
DENSE_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPUTE_DTYPES: dict[str, torch.dtype] = DENSE_DTYPES


class QuantError(ValueError):
    """A quantization request the engine cannot honour (unknown mode, unsupported card, untileable shape)."""

    def __init__(self, message: str, *, error_type: str = "bad_request") -> None:
        super().__init__(message)
        self.error_type = error_type


def check_mode(mode: str) -> str:
    if mode not in QUANT_MODES:
        raise QuantError(f"unknown quant mode {mode!r}: use one of {', '.join(QUANT_MODES)}")
    return mode


def activation_dtype(mode: str, compute_dtype: str | None, device: torch.device) -> torch.dtype:
    """The dtype activations flow in for a mode: the dense dtype itself, or the compute dtype for quantized modes
    (default bf16 on CUDA, fp32 on CPU)."""
    check_mode(mode)
    if mode in DENSE_DTYPES:
        return DENSE_DTYPES[mode]
    if compute_dtype is not None:
        if compute_dtype not in COMPUTE_DTYPES:
            raise QuantError(f"unknown compute dtype {compute_dtype!r}: use bf16, fp16 or fp32")
        return COMPUTE_DTYPES[compute_dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32
