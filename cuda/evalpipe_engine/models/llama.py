"""The Llama family: Llama (DeepSeek-Coder, CodeLlama, Yi-Coder, ...), Qwen2 (Qwen2.5-Coder: biases on q, k, v) and
Mistral (Codestral: an optional sliding window). RMSNorm fused with the residual add, SwiGLU MLP (gate and up as one
linear), rotary embeddings with the scalings of layers/rotary.py, grouped-query attention, tied or untied head,
padded vocabularies (the embedding's rows past the tokenizer are scored like any other, as HF does). One forward
for prefill and decode (models/base.py).

Refused with the config field named (never run wrong): attention biases other than Qwen2's q/k/v
(`attention_bias`), MLP biases (`mlp_bias`), an activation other than SiLU (`hidden_act`), a RoPE scaling type or
parameter the engine does not implement (`rope_scaling` / `rope_parameters`), a partial rotary factor, and Qwen2's
per-layer sliding windows (`use_sliding_window`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..layers.context import Context
from ..layers.linear import build_linear, merged_linear
from ..layers.mlp import SwiGLUMLP
from ..layers.norm import AddRMSNorm
from ..layers.rotary import RopeScaling, RopeTables, parse_rope_scaling
from .base import NativeCausalLM
from .weights import TensorSource

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
FAMILIES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "MistralForCausalLM": "mistral",
}
ARCHITECTURE_OF: dict[str, str] = {v: k for k, v in FAMILIES.items()}


def _unsupported(field_name: str, value: Any, source: str, why: str) -> ModelError:
    return ModelError(
        f"{field_name} = {value!r} in {source} is not supported by the native engine: {why}",
        error_type="unsupported",
        hint="load it with backend hf (HF transformers), or fix the config",
    )


@dataclass(frozen=True)
class LlamaConfig:
    """One config for the three families (`family`: llama, qwen2, mistral)."""

    family: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rope_theta: float
    rope_scaling: RopeScaling
    sliding_window: int | None
    rms_norm_eps: float
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None
    eos_token_ids: tuple[int, ...] = ()
    initializer_range: float = 0.02
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return ARCHITECTURE_OF[self.family]

    @property
    def qkv_bias(self) -> bool:
        return self.family == "qwen2"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> LlamaConfig:
        archs = list(d.get("architectures") or [])
        model_type = d.get("model_type")
        family = next((FAMILIES[a] for a in archs if a in FAMILIES), None)
        if family is None and model_type in ARCHITECTURE_OF:
            family = str(model_type)
        if family is None:
            name = ", ".join(archs) if archs else f"model_type={model_type!r}"
            raise ModelError(
                f"unsupported architecture {name} in {source}: models/llama.py implements {', '.join(FAMILIES)}",
                error_type="unsupported",
            )
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise _unsupported("hidden_act", act, source, "the Llama family's MLP here is SwiGLU (silu)")
        if d.get("attention_bias"):
            raise _unsupported(
                "attention_bias", d["attention_bias"], source, "only Qwen2's q/k/v biases are implemented"
            )
        if d.get("mlp_bias"):
            raise _unsupported("mlp_bias", d["mlp_bias"], source, "the MLP linears have no bias here")
        if d.get("pretraining_tp", 1) not in (None, 1):
            pass  # inference ignores it in HF too (it only split the matmuls in the original code)
        sliding: int | None = None
        if family == "qwen2":
            if d.get("use_sliding_window"):
                raise _unsupported(
                    "use_sliding_window", True, source, "Qwen2's per-layer sliding windows are not implemented"
                )
        elif family == "mistral":
            sliding = None if d.get("sliding_window") is None else int(d["sliding_window"])
        theta, scaling = parse_rope_scaling(d, source)
        try:
            hidden = int(d["hidden_size"])
            heads = int(d["num_attention_heads"])
            head_dim = int(d.get("head_dim") or hidden // heads)
            eos = d.get("eos_token_id")
            eos_list = [e for e in (eos if isinstance(eos, list) else [eos]) if isinstance(e, int)]
            bos = d.get("bos_token_id")
            cfg = cls(
                family=family,
                vocab_size=int(d["vocab_size"]),
                hidden_size=hidden,
                intermediate_size=int(d["intermediate_size"]),
                num_hidden_layers=int(d["num_hidden_layers"]),
                num_attention_heads=heads,
                num_key_value_heads=int(d.get("num_key_value_heads") or heads),
                head_dim=head_dim,
                max_position_embeddings=int(d.get("max_position_embeddings", 4096)),
                rope_theta=theta,
                rope_scaling=scaling,
                sliding_window=sliding,
                rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
                tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
                bos_token_id=bos if isinstance(bos, int) else None,
                eos_token_id=eos_list[0] if eos_list else None,
                eos_token_ids=tuple(eos_list),
                initializer_range=float(d.get("initializer_range", 0.02)),
            )
        except KeyError as e:
            raise ModelError(f"{source} lacks {e.args[0]!r}", hint="use the checkpoint's own config.json") from e
        if heads % cfg.num_key_value_heads:
            raise ModelError(
                f"{source}: {heads} attention heads are not a multiple of {cfg.num_key_value_heads} KV heads"
            )
        if head_dim % 2:
            raise _unsupported("head_dim", head_dim, source, "rotary embeddings need an even head dim")
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> LlamaConfig:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError as e:
            raise ModelError(f"no config.json at {p}", error_type="not_found") from e
        except json.JSONDecodeError as e:
            raise ModelError(f"{p} is not valid JSON: {e}") from e
        return cls.from_dict(data, source=str(p))

    @classmethod
    def preset(cls, name: str) -> LlamaConfig:
        """A full-size published config by name: configs/<name>.json (qwen2.5-coder-1.5b, qwen2.5-coder-7b,
        deepseek-coder-6.7b, codellama-7b)."""
        p = CONFIG_DIR / f"{name}.json"
        if not p.exists():
            known = sorted(q.stem for q in CONFIG_DIR.glob("*.json") if not q.stem.startswith("starcoder2"))
            raise ModelError(f"no config {name!r}", hint=f"use one of {', '.join(known)}")
        return cls.from_file(p)

    def to_hf_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "architectures": [self.architecture],
            "model_type": self.family,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": list(self.eos_token_ids) if len(self.eos_token_ids) > 1 else self.eos_token_id,
            "hidden_act": "silu",
            "initializer_range": self.initializer_range,
            "attention_dropout": 0.0,
        }
        scaling = self.rope_scaling.to_json()
        if scaling is not None:
            d["rope_scaling"] = scaling
        if self.family == "llama":
            d["attention_bias"] = False
            d["mlp_bias"] = False
        if self.family == "qwen2":
            d["use_sliding_window"] = False
        if self.family == "mistral":
            d["sliding_window"] = self.sliding_window
        return d

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """HF tensor name -> shape, for every tensor the model needs."""
        h, d = self.hidden_size, self.head_dim
        qd, kvd, inter = self.num_attention_heads * d, self.num_key_value_heads * d, self.intermediate_size
        shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (self.vocab_size, h)}
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}."
            shapes[p + "self_attn.q_proj.weight"] = (qd, h)
            shapes[p + "self_attn.k_proj.weight"] = (kvd, h)
            shapes[p + "self_attn.v_proj.weight"] = (kvd, h)
            if self.qkv_bias:
                shapes[p + "self_attn.q_proj.bias"] = (qd,)
                shapes[p + "self_attn.k_proj.bias"] = (kvd,)
                shapes[p + "self_attn.v_proj.bias"] = (kvd,)
            shapes[p + "self_attn.o_proj.weight"] = (h, qd)
            shapes[p + "mlp.gate_proj.weight"] = (inter, h)
            shapes[p + "mlp.up_proj.weight"] = (inter, h)
            shapes[p + "mlp.down_proj.weight"] = (h, inter)
            shapes[p + "input_layernorm.weight"] = (h,)
            shapes[p + "post_attention_layernorm.weight"] = (h,)
        shapes["model.norm.weight"] = (h,)
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, h)
        return shapes

    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.expected_shapes().values())

    def flops_per_token(self, context: int) -> float:
        """Forward FLOPs per token (2 per multiply-add) at `context` tokens per sequence (as Starcoder2Config's)."""
        h, d = self.hidden_size, self.head_dim
        qkv = h * (self.num_attention_heads + 2 * self.num_key_value_heads) * d
        per_layer = 2 * (qkv + self.num_attention_heads * d * h + 3 * h * self.intermediate_size)
        w = self.sliding_window or context
        avg_keys = (context + 1) / 2 if context <= w else (w * (w + 1) / 2 + (context - w) * w) / context
        attn = 2 * 2 * self.num_attention_heads * d * avg_keys
        return self.num_hidden_layers * (per_layer + attn) + 2 * h * self.vocab_size


class LlamaLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, i: int, source: TensorSource, mode: str, act: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{i}."

        def t(name: str) -> torch.Tensor:
            return source.get(p + name)

        names = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
        biases = [t(n + ".bias") for n in names] if cfg.qkv_bias else None
        self.qkv = merged_linear([t(n + ".weight") for n in names], biases, mode, act, name=p + "self_attn.qkv_proj")
        del biases
        self.o = build_linear(t("self_attn.o_proj.weight"), None, mode, act, name=p + "self_attn.o_proj")
        gate_up = merged_linear(
            [t("mlp.gate_proj.weight"), t("mlp.up_proj.weight")], None, mode, act, name=p + "mlp.gate_up_proj"
        )
        down = build_linear(t("mlp.down_proj.weight"), None, mode, act, name=p + "mlp.down_proj")
        self.mlp = SwiGLUMLP(gate_up, down, cfg.intermediate_size)
        self.input_norm = AddRMSNorm(t("input_layernorm.weight").to(act), cfg.rms_norm_eps)
        self.post_norm = AddRMSNorm(t("post_attention_layernorm.weight").to(act), cfg.rms_norm_eps)


class NativeLlama(NativeCausalLM):
    """Llama / Qwen2 / Mistral on our kernels. Implements backend.CausalLMBackend, every capability included."""

    config_class = LlamaConfig

    def build(self, source: TensorSource) -> None:
        cfg, act = self.cfg, self.act_dtype
        self.architecture = cfg.architecture
        self._build_head(source)
        self.layers = nn.ModuleList(LlamaLayer(cfg, i, source, self.quant, act) for i in range(cfg.num_hidden_layers))
        self.norm = AddRMSNorm(source.get("model.norm.weight").to(act), cfg.rms_norm_eps)
        self.rope = RopeTables(cfg.head_dim, cfg.rope_theta, cfg.max_position_embeddings, self.device, cfg.rope_scaling)
        self.attention = self._attention_layers()

    def forward(self, ids: torch.Tensor, ctx: Context) -> torch.Tensor:  # type: ignore[override]
        """Final-normed hidden states [N, hidden] of the tokens `ids` [N] (prefill or decode: ctx says which)."""
        cfg = self.cfg
        n = ids.shape[0]
        hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        x = F.embedding(ids, self.embed)
        layers = list(self.layers)
        h = layers[0].input_norm.first(x)
        for i, layer in enumerate(layers):
            assert isinstance(layer, LlamaLayer)
            qkv = layer.qkv(h).view(n, hq + 2 * hkv, d)
            del h
            a = self.attention[i](qkv, ctx)
            del qkv
            h = layer.post_norm.add(x, layer.o(a))
            del a
            y = layer.mlp(h)
            del h
            norm = layers[i + 1].input_norm if i + 1 < len(layers) else self.norm
            h = norm.add(x, y)
            del y
        return h
