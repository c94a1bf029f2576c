"""Kept import path (tests, benchmarks, callers of the earlier engine): the native models live in models/ (one file
per family), their layers in layers/, the HF reference model and random weights in devtools/."""

from .devtools.hf_reference import hf_reference_model
from .devtools.random_weights import random_state_dict
from .errors import ModelError
from .models import LlamaConfig, NativeCausalLM, NativeLlama, build_native_backend
from .models.starcoder2 import CONFIG_DIR, SUPPORTED_ARCHITECTURES, NativeStarcoder2, Starcoder2Config
from .models.weights import DictSource, SafetensorsSource, TensorSource, check_tensors

__all__ = [
    "CONFIG_DIR",
    "SUPPORTED_ARCHITECTURES",
    "DictSource",
    "LlamaConfig",
    "ModelError",
    "NativeCausalLM",
    "NativeLlama",
    "NativeStarcoder2",
    "SafetensorsSource",
    "Starcoder2Config",
    "TensorSource",
    "build_native_backend",
    "check_tensors",
    "hf_reference_model",
    "random_state_dict",
]
