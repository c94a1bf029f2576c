"""The model sizes bench/train_reference.py trains (StarCoder2 architecture) and how a trained model is written as a
checkpoint directory our engine loads (loading.py): config.json, model.safetensors (HF Starcoder2ForCausalLM names,
the tied head left out), tokenizer.json, tokenizer_config.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from evalpipe_engine.presets import starcoder2_tokenizer_config, tokenizer_config_text


@dataclass(frozen=True)
class SizePreset:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    context: int  # training sequence length = max_position_embeddings
    batch: int  # sequences per step
    lr: float
    warmup_steps: int
    save_dtype: str  # what model.safetensors holds


SIZES: dict[str, SizePreset] = {
    # about 3.4M parameters with a 4096 vocabulary: 6.8 MB in fp16, the embedded default
    "tiny": SizePreset(256, 4, 4, 2, 768, 1024, 64, 2e-3, 100, "float16"),
    # about 91M parameters: the reference model of the quality-cost table (not committed)
    "reference": SizePreset(768, 14, 12, 4, 3072, 1024, 32, 8e-4, 150, "bfloat16"),
}


def config_dict(size: SizePreset, vocab_size: int) -> dict[str, Any]:
    return {
        "architectures": ["Starcoder2ForCausalLM"],
        "model_type": "starcoder2",
        "vocab_size": vocab_size,
        "hidden_size": size.hidden,
        "intermediate_size": size.ffn,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "hidden_act": "gelu_pytorch_tanh",
        "max_position_embeddings": size.context,
        "initializer_range": 0.02,
        "norm_epsilon": 1e-5,
        "use_cache": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "rope_theta": 10000.0,
        "sliding_window": None,
        "attention_dropout": 0.0,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "use_bias": True,
        "tie_word_embeddings": True,
        "torch_dtype": size.save_dtype,
    }


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    """HF transformers' Starcoder2ForCausalLM for this config, initialised by transformers from torch's global
    generator (seed it first)."""
    from transformers import Starcoder2Config, Starcoder2ForCausalLM

    fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype")}
    return Starcoder2ForCausalLM(Starcoder2Config(**fields))


def write_checkpoint(
    out: Path, model: torch.nn.Module, config: dict[str, Any], tok: Tokenizer, dtype: torch.dtype
) -> None:
    """Write the checkpoint directory; each file through a temporary name, so a reader never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    _atomic(out / "model.safetensors", lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    _atomic(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n"))
    _atomic(out / "tokenizer.json", lambda p: tok.save(str(p)))
    tc = tokenizer_config_text(starcoder2_tokenizer_config(int(config["max_position_embeddings"])))
    _atomic(out / "tokenizer_config.json", lambda p: p.write_text(tc))


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".incomplete")
    write(tmp)
    tmp.replace(path)
