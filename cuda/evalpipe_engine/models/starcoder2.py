"""StarCoder2 (3B/7B/15B and any config of the same family): LayerNorm with bias fused with the residual add,
GELU(tanh) MLP, biased linears, rotary embeddings, grouped-query attention with a sliding window, tied or untied
head. One forward for prefill and decode (models/base.py).

    cfg = Starcoder2Config.from_file("ckpt/config.json")         # or Starcoder2Config.preset("3b")
    model = NativeStarcoder2.from_pretrained("ckpt", quant="bf16", attn="flash", device="cuda")
    model.target_logprobs([ids0, ids1])   # CausalLMBackend (backend.py)

On the fp8 prefill path three of each layer's four linear inputs are quantized by the op that makes them (fused
add + LayerNorm + quantize, GELU + quantize: kernels/fused_quant.py, docs/quantization.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..layers.context import Context, DecodeContext
from ..layers.linear import build_linear, merged_linear
from ..layers.mlp import GeluMLP
from ..layers.norm import AddLayerNorm
from ..layers.rotary import RopeTables
from .base import NativeCausalLM
from .weights import TensorSource

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SUPPORTED_ARCHITECTURES = ("Starcoder2ForCausalLM",)


@dataclass(frozen=True)
class Starcoder2Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    sliding_window: int | None
    norm_epsilon: float
    use_bias: bool
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None
    initializer_range: float = 0.02
    architecture = "Starcoder2ForCausalLM"
    family = "starcoder2"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> Starcoder2Config:
        archs = d.get("architectures") or []
        model_type = d.get("model_type")
        if model_type != "starcoder2" and not any(a in SUPPORTED_ARCHITECTURES for a in archs):
            name = ", ".join(archs) if archs else f"model_type={model_type!r}"
            raise ModelError(
                f"unsupported architecture {name} in {source}: the native engine implements StarCoder2 only",
                error_type="unsupported",
                hint="load it with the HF backend, or point at a Starcoder2ForCausalLM checkpoint",
            )
        act = d.get("hidden_act", "gelu_pytorch_tanh")
        if act not in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
            raise ModelError(f"unsupported activation {act!r} in {source}", error_type="unsupported")
        if d.get("norm_type", "layer_norm") != "layer_norm" or d.get("mlp_type", "default") != "default":
            raise ModelError(
                f"unsupported norm_type/mlp_type {d.get('norm_type')!r}/{d.get('mlp_type')!r} in {source}",
                error_type="unsupported",
            )
        rope = d.get("rope_parameters") or {}
        if rope.get("rope_type", "default") != "default" or d.get("rope_scaling"):
            raise ModelError(f"unsupported rope scaling in {source}", error_type="unsupported")
        theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        try:
            hidden = int(d["hidden_size"])
            heads = int(d["num_attention_heads"])
            cfg = cls(
                vocab_size=int(d["vocab_size"]),
                hidden_size=hidden,
                intermediate_size=int(d["intermediate_size"]),
                num_hidden_layers=int(d["num_hidden_layers"]),
                num_attention_heads=heads,
                num_key_value_heads=int(d.get("num_key_value_heads", heads)),
                max_position_embeddings=int(d.get("max_position_embeddings", 4096)),
                rope_theta=float(theta),
                sliding_window=None if d.get("sliding_window") is None else int(d["sliding_window"]),
                norm_epsilon=float(d.get("norm_epsilon", 1e-5)),
                use_bias=bool(d.get("use_bias", True)),
                tie_word_embeddings=bool(d.get("tie_word_embeddings", True)),
                bos_token_id=d.get("bos_token_id"),
                eos_token_id=d.get("eos_token_id"),
                initializer_range=float(d.get("initializer_range", 0.02)),
            )
        except KeyError as e:
            raise ModelError(f"{source} lacks {e.args[0]!r}", hint="use the checkpoint's own config.json") from e
        if d.get("head_dim") not in (None, cfg.head_dim):
            raise ModelError(f"head_dim {d.get('head_dim')} != hidden/heads in {source}", error_type="unsupported")
        if hidden % heads or heads % cfg.num_key_value_heads:
            raise ModelError(f"{source}: hidden {hidden}, heads {heads}, kv heads {cfg.num_key_value_heads} disagree")
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> Starcoder2Config:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError as e:
            raise ModelError(f"no config.json at {p}", error_type="not_found") from e
        except json.JSONDecodeError as e:
            raise ModelError(f"{p} is not valid JSON: {e}") from e
        return cls.from_dict(data, source=str(p))

    @classmethod
    def preset(cls, name: str) -> Starcoder2Config:
        """`3b`, `7b` or `15b`: the published StarCoder2 hyperparameters (configs/starcoder2-*.json)."""
        p = CONFIG_DIR / f"starcoder2-{name}.json"
        if not p.exists():
            raise ModelError(f"no StarCoder2 preset {name!r}", hint="use 3b, 7b or 15b")
        return cls.from_file(p)

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["Starcoder2ForCausalLM"],
            "model_type": "starcoder2",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "sliding_window": self.sliding_window,
            "norm_epsilon": self.norm_epsilon,
            "use_bias": self.use_bias,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "hidden_act": "gelu_pytorch_tanh",
            "initializer_range": self.initializer_range,
            "attention_dropout": 0.0,
            "residual_dropout": 0.0,
            "embedding_dropout": 0.0,
        }

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """HF tensor name -> shape, for every tensor the model needs."""
        h, d = self.hidden_size, self.head_dim
        qd, kvd = self.num_attention_heads * d, self.num_key_value_heads * d
        shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (self.vocab_size, h)}
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}."
            lin = {
                "self_attn.q_proj": (qd, h),
                "self_attn.k_proj": (kvd, h),
                "self_attn.v_proj": (kvd, h),
                "self_attn.o_proj": (h, qd),
                "mlp.c_fc": (self.intermediate_size, h),
                "mlp.c_proj": (h, self.intermediate_size),
            }
            for name, shape in lin.items():
                shapes[p + name + ".weight"] = shape
                if self.use_bias:
                    shapes[p + name + ".bias"] = (shape[0],)
            for ln in ("input_layernorm", "post_attention_layernorm"):
                shapes[p + ln + ".weight"] = (h,)
                shapes[p + ln + ".bias"] = (h,)
        shapes["model.norm.weight"] = (h,)
        shapes["model.norm.bias"] = (h,)
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, h)
        return shapes

    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.expected_shapes().values())

    def flops_per_token(self, context: int) -> float:
        """Forward FLOPs per token (2 per multiply-add) at `context` tokens per sequence: linears + head + the
        attention products (causal, windowed: the average number of keys a query sees)."""
        h, d = self.hidden_size, self.head_dim
        qkv = h * (self.num_attention_heads + 2 * self.num_key_value_heads) * d
        per_layer = 2 * (qkv + h * h + 2 * h * self.intermediate_size)
        w = self.sliding_window or context
        # past the window, the first w queries ramp up and the rest see w keys each
        avg_keys = (context + 1) / 2 if context <= w else (w * (w + 1) / 2 + (context - w) * w) / context
        attn = 2 * 2 * self.num_attention_heads * d * avg_keys
        return self.num_hidden_layers * (per_layer + attn) + 2 * h * self.vocab_size


class Starcoder2Layer(nn.Module):
    def __init__(self, cfg: Starcoder2Config, i: int, source: TensorSource, mode: str, act: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{i}."

        def t(name: str) -> torch.Tensor:
            return source.get(p + name)

        def b(name: str) -> torch.Tensor | None:
            return source.get(p + name + ".bias") if cfg.use_bias else None

        names = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
        qkv_b = [t(n + ".bias") for n in names] if cfg.use_bias else None
        self.qkv = merged_linear([t(n + ".weight") for n in names], qkv_b, mode, act, name=p + "self_attn.qkv_proj")
        del qkv_b
        self.o = build_linear(t("self_attn.o_proj.weight"), b("self_attn.o_proj"), mode, act, name=p + "o_proj")
        fc = build_linear(t("mlp.c_fc.weight"), b("mlp.c_fc"), mode, act, name=p + "mlp.c_fc")
        proj = build_linear(t("mlp.c_proj.weight"), b("mlp.c_proj"), mode, act, name=p + "mlp.c_proj")
        self.mlp = GeluMLP(fc, proj)
        eps = cfg.norm_epsilon
        self.input_norm = AddLayerNorm(t("input_layernorm.weight").to(act), t("input_layernorm.bias").to(act), eps)
        self.post_norm = AddLayerNorm(
            t("post_attention_layernorm.weight").to(act), t("post_attention_layernorm.bias").to(act), eps
        )

    @property
    def fc(self) -> nn.Module:
        return self.mlp.fc

    @property
    def proj(self) -> nn.Module:
        return self.mlp.proj


class NativeStarcoder2(NativeCausalLM):
    """StarCoder2 on our kernels. Implements backend.CausalLMBackend, every capability included."""

    architecture = "Starcoder2ForCausalLM"
    config_class = Starcoder2Config

    def __init__(
        self,
        cfg: Starcoder2Config,
        source: TensorSource,
        *,
        quant: str = "bf16",
        attn: str = "flash",
        compute_dtype: str | None = None,
        fuse_gelu: bool = True,
    ) -> None:
        self._fuse_gelu_wanted = fuse_gelu
        super().__init__(cfg, source, quant=quant, attn=attn, compute_dtype=compute_dtype)

    def build(self, source: TensorSource) -> None:
        cfg, act = self.cfg, self.act_dtype
        self.fuse_gelu = self._fuse_gelu_wanted and self.device.type == "cuda"
        self._build_head(source)
        self.layers = nn.ModuleList(
            Starcoder2Layer(cfg, i, source, self.quant, act) for i in range(cfg.num_hidden_layers)
        )
        self.norm = AddLayerNorm(
            source.get("model.norm.weight").to(act), source.get("model.norm.bias").to(act), cfg.norm_epsilon
        )
        self.rope = RopeTables(cfg.head_dim, cfg.rope_theta, cfg.max_position_embeddings, self.device)
        self.attention = self._attention_layers()

    # ---------------------------------------------------------------------------------------------- forward

    def forward(self, ids: torch.Tensor, ctx: Context) -> torch.Tensor:  # type: ignore[override]
        """Final-normed hidden states [N, hidden] of the tokens `ids` [N]: the packed prompts of a prefill, or one
        token per cache row in a decode step (ctx says which; only the attention reads it)."""
        cfg = self.cfg
        n = ids.shape[0]
        hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        prefill = not isinstance(ctx, DecodeContext)
        x = F.embedding(ids, self.embed)
        layers = list(self.layers)
        h = layers[0].input_norm.first(x)
        for i, layer in enumerate(layers):
            assert isinstance(layer, Starcoder2Layer)
            qkv = layer.qkv(h).view(n, hq + 2 * hkv, d)
            del h
            a = self.attention[i](qkv, ctx)
            del qkv
            fc = layer.mlp.fc
            h = layer.post_norm.add(x, layer.o(a), quantize_for=prefill and self._fp8_input(fc, n))
            del a
            y = layer.mlp(h, fuse_gelu=self.fuse_gelu, deterministic=self.deterministic, quantize_for=self._fp8_input)
            del h
            if i + 1 < len(layers):
                nxt = layers[i + 1]
                assert isinstance(nxt, Starcoder2Layer)
                h = nxt.input_norm.add(x, y, quantize_for=prefill and self._fp8_input(nxt.qkv, n))
            else:
                h = self.norm.add(x, y)
            del y
        return h

    def _fp8_input(self, linear: nn.Module, rows: int) -> bool:
        """Whether the op producing `linear`'s input should quantize it (fused add+LayerNorm or GELU) instead of the
        linear: an fp8 linear on its prefill path on CUDA (more than small_m_max rows; decode never gets here).
        On unless the fp8_fused switch is off (self.fast_paths: the load op's option, by default EVALPIPE_FP8_FUSED)."""
        from ..quant.fp8 import Fp8Linear

        return (
            isinstance(linear, Fp8Linear)
            and not self.deterministic
            and self.device.type == "cuda"
            and rows > linear.options.small_m_max
            and self.fast_paths.use_fp8_fused
        )
