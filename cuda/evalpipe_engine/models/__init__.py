"""The native models, one file per family (nano-vllm style): starcoder2.py (StarCoder2) and llama.py (Llama, Qwen2,
Mistral). `native_config(config)` parses a checkpoint's config.json for the family that runs it (None when no native
family does); `build_native_backend` is loading.select_backend's builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .base import NativeCausalLM
from .llama import FAMILIES as LLAMA_FAMILIES
from .llama import LlamaConfig, NativeLlama
from .starcoder2 import NativeStarcoder2, Starcoder2Config
from .weights import SafetensorsSource

NATIVE_ARCHITECTURES: dict[str, tuple[type[Any], type[NativeCausalLM]]] = {
    "Starcoder2ForCausalLM": (Starcoder2Config, NativeStarcoder2),
    **{arch: (LlamaConfig, NativeLlama) for arch in LLAMA_FAMILIES},
}
_MODEL_TYPES: dict[str, str] = {"starcoder2": "Starcoder2ForCausalLM", "llama": "LlamaForCausalLM",
                                "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}  # fmt: skip


def native_architecture(config: dict[str, Any]) -> str | None:
    """The native architecture that runs this config.json (by `architectures`, else `model_type`), or None."""
    for arch in config.get("architectures") or []:
        if arch in NATIVE_ARCHITECTURES:
            return str(arch)
    if config.get("architectures"):
        return None
    return _MODEL_TYPES.get(str(config.get("model_type")))


def native_config(config: dict[str, Any], source: str = "config") -> Any:
    """The parsed config of the native family for this config.json (raises ModelError naming a field it does not
    support), or None when no native family runs the architecture."""
    arch = native_architecture(config)
    if arch is None:
        return None
    cfg_cls, _ = NATIVE_ARCHITECTURES[arch]
    return cfg_cls.from_dict(config, source=source)


def build_native_backend(
    model_dir: Path,
    config: dict[str, Any],
    quant: str,
    attn: str,
    device: torch.device,
    architecture: str,
    *,
    compute_dtype: str | None = None,
) -> NativeCausalLM:
    """loading.select_backend's builder for the native architectures. `compute_dtype` (bf16/fp16/fp32) is the
    activation dtype of the quantized modes."""
    arch = native_architecture(config) or architecture
    cfg_cls, model_cls = NATIVE_ARCHITECTURES[arch]
    cfg = cfg_cls.from_dict(config, source=str(model_dir / "config.json"))
    with torch.inference_mode():
        return model_cls(cfg, SafetensorsSource(model_dir, device), quant=quant, attn=attn, compute_dtype=compute_dtype)


__all__ = [
    "NATIVE_ARCHITECTURES",
    "LlamaConfig",
    "NativeCausalLM",
    "NativeLlama",
    "NativeStarcoder2",
    "Starcoder2Config",
    "build_native_backend",
    "native_architecture",
    "native_config",
]
