"""Shared fixtures for the native-model tests: a tiny StarCoder2 config and its HF twin on the same weights."""

from __future__ import annotations

from typing import Any

from evalpipe_engine.model import Starcoder2Config


def tiny_config(**overrides: Any) -> Starcoder2Config:
    d: dict[str, Any] = {
        "model_type": "starcoder2",
        "architectures": ["Starcoder2ForCausalLM"],
        "vocab_size": 211,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "sliding_window": 16,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    d.update(overrides)
    return Starcoder2Config.from_dict(d)
