"""Built-in models for smoke runs and tests: `preset:trained-tiny-starcoder2` (trained weights, committed:
trained_presets.py; the smoke run's model), `preset:tiny-starcoder2` (random, deterministic by seed), and the Llama
family's `preset:tiny-llama` (linear RoPE scaling, untied), `preset:tiny-qwen2` (q/k/v biases, tied embeddings, a
vocabulary padded past the tokenizer, no BOS in its tokenizer) and `preset:tiny-mistral` (sliding window 64), each
with its family's special tokens on the same offline tokenizer.

A tiny StarCoder2 (hidden 64, 2 layers, 4 heads / 2 KV heads, sliding window 64 so windows are exercised, tied
embeddings) with random weights drawn from `torch.Generator().manual_seed(seed)`, and a byte-level BPE tokenizer
trained offline on a small Python text written for this file. Same seed => byte-identical weights and tokenizer,
whatever the transformers version's own init scheme is.

`write_preset_dir(path, seed)` materialises it as a local HF directory (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json) that transformers loads like any checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .trained_presets import TRAINED_PRESETS

PRESET_PREFIX = "preset:"
TINY_STARCODER2 = "tiny-starcoder2"
PRESETS: tuple[str, ...] = (TINY_STARCODER2, "tiny-llama", "tiny-qwen2", "tiny-mistral", *TRAINED_PRESETS)

EOS_TOKEN = "<|endoftext|>"
FILE_SEP_TOKEN = "<file_sep>"
SPECIAL_TOKENS: tuple[str, ...] = (EOS_TOKEN, FILE_SEP_TOKEN)
VOCAB_SIZE = 512  # upper bound; the trained tokenizer may stop earlier and the config takes its real size
MAX_POSITIONS = 512
SLIDING_WINDOW = 64

# Training text for the tokenizer's merges: plain Python in the style of HumanEval prompts, written for this file.
_TRAINING_TEXT = '''
def add(a: int, b: int) -> int:
    """Return the sum of a and b.
    >>> add(2, 3)
    5
    """
    return a + b


def is_palindrome(text: str) -> bool:
    """Check whether the given string reads the same backwards."""
    cleaned = [c.lower() for c in text if c.isalnum()]
    return cleaned == cleaned[::-1]


def count_vowels(word: str) -> int:
    total = 0
    for ch in word:
        if ch in "aeiouAEIOU":
            total += 1
    return total


class Stack:
    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, value: int) -> None:
        self.items.append(value)

    def pop(self) -> int:
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()


def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    result = []
    a, b = 0, 1
    while len(result) < n:
        result.append(a)
        a, b = b, a + b
    return result


import os
import sys

if __name__ == "__main__":
    values = [int(x) for x in sys.argv[1:]]
    print(sum(values), max(values, default=0))
    for key, value in sorted(os.environ.items()):
        print(f"{key}={value}")
'''


def parse_preset(model: str) -> str | None:
    """`preset:NAME` -> NAME, anything else -> None."""
    return model[len(PRESET_PREFIX) :] if model.startswith(PRESET_PREFIX) else None


def build_tokenizer(special_tokens: tuple[str, ...] = SPECIAL_TOKENS) -> Tokenizer:
    """Byte-level BPE: the special tokens (StarCoder2's: <|endoftext|> id 0, <file_sep> id 1), all 256 bytes, then
    merges learned from the built-in text up to VOCAB_SIZE entries. Works offline; deterministic."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TRAINING_TEXT], trainer=trainer)
    return tok


def tiny_starcoder2_config_dict(vocab_size: int) -> dict[str, object]:
    eos_id = 0
    return {
        "architectures": ["Starcoder2ForCausalLM"],
        "model_type": "starcoder2",
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "gelu_pytorch_tanh",
        "max_position_embeddings": MAX_POSITIONS,
        "initializer_range": 0.02,
        "norm_epsilon": 1e-5,
        "use_cache": True,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "rope_theta": 10000.0,
        "sliding_window": SLIDING_WINDOW,
        "attention_dropout": 0.0,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "use_bias": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def _param_shapes(config_dict: dict[str, object]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the HF Starcoder2ForCausalLM for this config (built on the meta device)."""
    from transformers import Starcoder2Config, Starcoder2ForCausalLM

    config = Starcoder2Config(**{k: v for k, v in config_dict.items() if k not in ("architectures", "model_type")})
    with torch.device("meta"):
        model = Starcoder2ForCausalLM(config)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    if config_dict.get("tie_word_embeddings"):
        shapes.pop("lm_head.weight", None)
    return shapes


def tiny_starcoder2_weights(config_dict: dict[str, object], seed: int) -> dict[str, torch.Tensor]:
    """Random weights, drawn in sorted-name order from one generator: embeddings N(0, 0.5) (peaked logits through
    the tied head), other matrices N(0, 0.1), biases N(0, 0.02), LayerNorm weights 1 + N(0, 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape in sorted(_param_shapes(config_dict).items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name and name.endswith(".weight"):
            tensor = 1.0 + 0.1 * noise
        elif name.endswith(".bias"):
            tensor = 0.02 * noise
        elif "embed_tokens" in name:
            tensor = 0.5 * noise
        else:
            tensor = 0.1 * noise
        out[name] = tensor.contiguous()
    return out


def write_preset_dir(path: str | Path, seed: int = 0, name: str = TINY_STARCODER2) -> Path:
    """Write the preset as a local HF model directory; returns the directory."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if name in TRAINED_PRESETS:  # a copy of the committed checkpoint (the seed does not apply)
        for f in sorted(TRAINED_PRESETS[name].iterdir()):
            if f.is_file():
                shutil.copyfile(f, out / f.name)
        return out
    if name != TINY_STARCODER2:
        _write_llama_family(out, seed, name)
        (out / "evalpipe_preset.json").write_text(json.dumps({"preset": name, "seed": seed}) + "\n")
        return out
    tok = build_tokenizer()
    config = tiny_starcoder2_config_dict(tok.get_vocab_size())
    weights = tiny_starcoder2_weights(config, seed)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tok.save(str(out / "tokenizer.json"))
    write_tokenizer_config(out, starcoder2_tokenizer_config(MAX_POSITIONS))
    (out / "evalpipe_preset.json").write_text(json.dumps({"preset": name, "seed": seed}) + "\n")
    return out


def starcoder2_tokenizer_config(max_length: int) -> dict[str, Any]:
    """tokenizer_config.json of a StarCoder2 tokenizer with SPECIAL_TOKENS (<|endoftext|> as BOS, EOS and UNK, no
    BOS added, as StarCoder2's own): the random and trained presets', and bench/train_reference.py's checkpoints'."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
        "pad_token": None,
        "additional_special_tokens": [FILE_SEP_TOKEN],
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
    }


def tokenizer_config_text(config: dict[str, Any]) -> str:
    """The bytes of tokenizer_config.json as every checkpoint evalpipe writes has them: sorted keys, indent 2."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def write_tokenizer_config(directory: Path, config: dict[str, Any]) -> None:
    (directory / "tokenizer_config.json").write_text(tokenizer_config_text(config))


# ---------------------------------------------------------------------------------------- the Llama family

TINY_LLAMA = "tiny-llama"
TINY_QWEN2 = "tiny-qwen2"
TINY_MISTRAL = "tiny-mistral"

# Each family's special tokens (ids 0.. in this order), BOS/EOS ids and the tokenizer's add_bos_token, as their
# published tokenizers have them: Llama and Mistral <unk> <s> </s> with BOS added; Qwen2 <|endoftext|> (its
# config's BOS and EOS) and no BOS in its tokenizer.
_LLAMA_FAMILY: dict[str, dict[str, Any]] = {
    TINY_LLAMA: {
        "architecture": "LlamaForCausalLM", "model_type": "llama", "specials": ("<unk>", "<s>", "</s>"),
        "bos": 1, "eos": 2, "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
        "extra": {"rope_theta": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 2.0},
                  "tie_word_embeddings": False, "rms_norm_eps": 1e-5},
    },
    TINY_QWEN2: {
        "architecture": "Qwen2ForCausalLM", "model_type": "qwen2",
        "specials": ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        "bos": 0, "eos": 0, "bos_token": None, "eos_token": "<|endoftext|>", "add_bos_token": False,
        "extra": {"rope_theta": 1000000.0, "tie_word_embeddings": True, "rms_norm_eps": 1e-6,
                  "use_sliding_window": False, "sliding_window": None, "max_window_layers": 2},
        "pad_vocab_to": 64,
    },
    TINY_MISTRAL: {
        "architecture": "MistralForCausalLM", "model_type": "mistral", "specials": ("<unk>", "<s>", "</s>"),
        "bos": 1, "eos": 2, "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
        "extra": {"rope_theta": 1000000.0, "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
                  "sliding_window": SLIDING_WINDOW},
    },
}  # fmt: skip


def tiny_llama_family_config_dict(name: str, tokenizer_size: int) -> dict[str, Any]:
    spec = _LLAMA_FAMILY[name]
    pad = int(spec.get("pad_vocab_to", 1))
    vocab = -(-tokenizer_size // pad) * pad if pad > 1 else tokenizer_size
    if pad > 1 and vocab == tokenizer_size:
        vocab += pad  # always some padding rows, as Qwen2's 151936 > its 151665 tokens
    return {
        "architectures": [spec["architecture"]],
        "model_type": spec["model_type"],
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "initializer_range": 0.02,
        "bos_token_id": spec["bos"],
        "eos_token_id": spec["eos"],
        "attention_dropout": 0.0,
        "use_cache": True,
        "torch_dtype": "float32",
        **spec["extra"],
    }


def tiny_llama_family_weights(config_dict: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """As tiny_starcoder2_weights: drawn in sorted-name order from one generator, RMSNorm weights 1 + N(0, 0.1),
    biases N(0, 0.02), embeddings N(0, 0.5), other matrices N(0, 0.1)."""
    from .models.llama import LlamaConfig

    cfg = LlamaConfig.from_dict(config_dict, source="preset")
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape in sorted(cfg.expected_shapes().items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            tensor = 1.0 + 0.1 * noise
        elif name.endswith(".bias"):
            tensor = 0.02 * noise
        elif "embed_tokens" in name:
            tensor = 0.5 * noise
        else:
            tensor = 0.1 * noise
        out[name] = tensor.contiguous()
    return out


def _write_llama_family(out: Path, seed: int, name: str) -> None:
    spec = _LLAMA_FAMILY[name]
    tok = build_tokenizer(spec["specials"])
    config = tiny_llama_family_config_dict(name, tok.get_vocab_size())
    weights = tiny_llama_family_weights(config, seed)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tok.save(str(out / "tokenizer.json"))
    write_tokenizer_config(out, llama_family_tokenizer_config(name, MAX_POSITIONS))


def llama_family_tokenizer_config(name: str, max_length: int) -> dict[str, Any]:
    """tokenizer_config.json of a Llama-family preset's tokenizer (its family's special tokens and BOS rule)."""
    spec = _LLAMA_FAMILY[name]
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": spec["bos_token"],
        "eos_token": spec["eos_token"],
        "unk_token": spec["specials"][0] if spec["specials"][0] == "<unk>" else None,
        "pad_token": None,
        "additional_special_tokens": [t for t in spec["specials"] if t not in (spec["bos_token"], spec["eos_token"])],
        "add_bos_token": spec["add_bos_token"],
        "add_eos_token": False,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
    }
