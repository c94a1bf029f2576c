"""Our own StarCoder2 (3B/7B/15B and any config of the same family): packed variable-length prefill with our
attention kernels, a chunked LM head, and HF safetensors loading (single file or sharded).

Use:
    cfg = Starcoder2Config.from_file("ckpt/config.json")         # or Starcoder2Config.preset("3b")
    model = NativeStarcoder2.from_pretrained("ckpt", quant="bf16", attn="flash", device="cuda")
    model = NativeStarcoder2.random(cfg, quant="bf16", attn="flash", device="cuda", seed=0)   # weights made on device
    model.target_logprobs([ids0, ids1])   # CausalLMBackend (backend.py)

Every linear is built through quant.linear.build_linear, so int8/nf4/fp8 come in through that one seam; the
embedding, the layer norms and the LM head stay dense in the activation dtype.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import ATTN_BACKENDS, packed_attention
from .backend import Decoder, ModelFacts
from .errors import EngineError
from .fast_paths import FastPaths
from .head import chunk_rows_for, target_logprobs_chunked
from .invariant import invariant_linear
from .quant.common import QuantLinearBase
from .quant.linear import DenseLinear, build_linear
from .quant.modes import activation_dtype, check_mode
from .rope import RopeTables, apply_rope_inplace

CONFIG_DIR = Path(__file__).parent / "configs"
SUPPORTED_ARCHITECTURES = ("Starcoder2ForCausalLM",)


class ModelError(EngineError):
    """A model the native engine cannot build or run as asked (`bad_request` unless `error_type` says else)."""

    error_type = "bad_request"


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


# ---------------------------------------------------------------------------------------------- weight sources


class TensorSource:
    """Where weights come from: `get(name)` returns the tensor on `device`; shapes are checked before loading."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def names(self) -> set[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        raise NotImplementedError


class DictSource(TensorSource):
    def __init__(self, tensors: Mapping[str, torch.Tensor], device: torch.device) -> None:
        super().__init__(device)
        self.tensors = tensors

    def names(self) -> set[str]:
        return set(self.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name].shape)

    def get(self, name: str) -> torch.Tensor:
        return self.tensors[name].to(self.device)


class SafetensorsSource(TensorSource):
    """A checkpoint directory: model.safetensors, or shards listed in model.safetensors.index.json."""

    def __init__(self, directory: Path, device: torch.device) -> None:
        from safetensors import safe_open

        super().__init__(device)
        index = directory / "model.safetensors.index.json"
        if index.exists():
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            single = directory / "model.safetensors"
            if not single.exists():
                raise ModelError(
                    f"no model.safetensors or model.safetensors.index.json in {directory}",
                    error_type="not_found",
                    hint="point at a directory holding an HF safetensors checkpoint",
                )
            files = [single.name]
            weight_map = {}
        self._handles: dict[str, Any] = {}
        self._where: dict[str, str] = {}
        for f in files:
            path = directory / f
            if not path.exists():
                raise ModelError(f"shard {f} named by the index is missing from {directory}", error_type="not_found")
            h = safe_open(str(path), framework="pt", device=str(device))
            self._handles[f] = h
            for k in h.keys():  # noqa: SIM118 (safe_open handles are not mappings)
                self._where[k] = f
        for k, f in weight_map.items():
            if self._where.get(k) != f:
                raise ModelError(f"tensor {k} is listed in the index under {f} but that shard does not hold it")

    def names(self) -> set[str]:
        return set(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handles[self._where[name]].get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        return self._handles[self._where[name]].get_tensor(name)


def check_tensors(cfg: Starcoder2Config, source: TensorSource) -> None:
    """Every needed tensor present with its shape, else one error naming the tensor and both shapes."""
    have = source.names()
    for name, shape in cfg.expected_shapes().items():
        if name not in have:
            hint = "the checkpoint is incomplete or not a StarCoder2 checkpoint of this config"
            raise ModelError(f"missing tensor {name} (expected shape {list(shape)})", hint=hint)
        got = source.shape(name)
        if got != shape:
            raise ModelError(
                f"tensor {name} has shape {list(got)} but the config implies {list(shape)}",
                hint="config.json and the weights disagree: use the checkpoint's own config.json",
            )


def random_state_dict(
    cfg: Starcoder2Config,
    device: torch.device | str,
    dtype: torch.dtype,
    seed: int = 0,
    *,
    residual_scaled: bool = False,
) -> dict[str, torch.Tensor]:
    """Random weights with HF names, made directly on `device` (no CPU round trip for full-size models).
    Linears ~ N(0, initializer_range) (HF's own init), biases and norm parameters small but non-zero so that tests
    see them. `residual_scaled` divides the std of the two projections that write into the residual stream
    (o_proj, c_proj) by sqrt(2 * layers), the GPT-2/Megatron practice: a random model that is not chaotic, so that
    bf16 rounding differences are not amplified layer after layer (see docs/fast-path.md, parity)."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    std = cfg.initializer_range
    for name, shape in cfg.expected_shapes().items():
        t = torch.empty(shape, device=dev, dtype=dtype)
        if "layernorm" in name or name.startswith("model.norm"):
            base = 1.0 if name.endswith("weight") else 0.0
            t.normal_(base, 0.05, generator=gen)
        elif name.endswith("bias"):
            t.normal_(0.0, 0.02, generator=gen)
        else:
            scale = 1.0
            if residual_scaled and (name.endswith("o_proj.weight") or name.endswith("c_proj.weight")):
                scale = 1.0 / math.sqrt(2 * cfg.num_hidden_layers)
            t.normal_(0.0, std * scale, generator=gen)
        out[name] = t
    return out


# ------------------------------------------------------------------------------------------------------ model


class _Layer(nn.Module):
    def __init__(self, cfg: Starcoder2Config, i: int, source: TensorSource, mode: str, act: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{i}."

        def t(name: str) -> torch.Tensor:
            return source.get(p + name)

        def b(name: str) -> torch.Tensor | None:
            return source.get(p + name + ".bias") if cfg.use_bias else None

        qkv_w = torch.cat([t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight")])
        qkv_b = None
        if cfg.use_bias:
            qkv_b = torch.cat([t("self_attn.q_proj.bias"), t("self_attn.k_proj.bias"), t("self_attn.v_proj.bias")])
        self.qkv = build_linear(qkv_w, qkv_b, mode, act, name=p + "self_attn.qkv_proj")
        del qkv_w, qkv_b
        self.o = build_linear(t("self_attn.o_proj.weight"), b("self_attn.o_proj"), mode, act, name=p + "o_proj")
        self.fc = build_linear(t("mlp.c_fc.weight"), b("mlp.c_fc"), mode, act, name=p + "mlp.c_fc")
        self.proj = build_linear(t("mlp.c_proj.weight"), b("mlp.c_proj"), mode, act, name=p + "mlp.c_proj")
        self.ln1_w = nn.Parameter(t("input_layernorm.weight").to(act), requires_grad=False)
        self.ln1_b = nn.Parameter(t("input_layernorm.bias").to(act), requires_grad=False)
        self.ln2_w = nn.Parameter(t("post_attention_layernorm.weight").to(act), requires_grad=False)
        self.ln2_b = nn.Parameter(t("post_attention_layernorm.bias").to(act), requires_grad=False)


@dataclass
class _Packed:
    ids: torch.Tensor  # [N] int64 on device
    positions: torch.Tensor  # [N] int32 on device
    cu_seqlens: torch.Tensor  # [S+1] int32 on device
    bounds: list[int]
    max_seqlen: int


class NativeStarcoder2(nn.Module):
    """StarCoder2 on our kernels. Implements backend.CausalLMBackend, every capability included."""

    can_be_deterministic = True
    batches_prompts = True

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
        super().__init__()
        check_mode(quant)
        if attn not in ATTN_BACKENDS:
            raise ModelError(f"unknown attention backend {attn!r}", hint=f"use one of {', '.join(ATTN_BACKENDS)}")
        check_tensors(cfg, source)
        self.cfg = cfg
        self.quant = quant
        self.attn = attn
        self.device = source.device
        self.act_dtype = activation_dtype(quant, compute_dtype, self.device)
        self.fuse_gelu = fuse_gelu and self.device.type == "cuda"
        act = self.act_dtype
        self.embed = nn.Parameter(source.get("model.embed_tokens.weight").to(act), requires_grad=False)
        self.layers = nn.ModuleList(_Layer(cfg, i, source, quant, act) for i in range(cfg.num_hidden_layers))
        self.norm_w = nn.Parameter(source.get("model.norm.weight").to(act), requires_grad=False)
        self.norm_b = nn.Parameter(source.get("model.norm.bias").to(act), requires_grad=False)
        if cfg.tie_word_embeddings:
            self.lm_head: nn.Parameter = self.embed
        else:
            self.lm_head = nn.Parameter(source.get("lm_head.weight").to(act), requires_grad=False)
        self.rope = RopeTables(cfg.head_dim, cfg.rope_theta, cfg.max_position_embeddings, self.device)
        self.chunk_rows = chunk_rows_for(cfg.vocab_size)
        self.deterministic = False
        self.fast_paths = FastPaths()  # every switch from its environment variable until set_fast_paths
        weight_bytes = sum(p.numel() * p.element_size() for p in self.parameters())
        weight_bytes += sum(b.numel() * b.element_size() for b in self.buffers())
        self.facts = ModelFacts(
            architecture="Starcoder2ForCausalLM",
            vocab_size=cfg.vocab_size,
            max_position_embeddings=cfg.max_position_embeddings,
            sliding_window=cfg.sliding_window,
            bos_token_id=cfg.bos_token_id,
            eos_token_id=cfg.eos_token_id,
            n_params=cfg.n_params(),
            weight_bytes=weight_bytes,
            dtype=str(act).removeprefix("torch."),
            device=str(self.device),
        )

    # ----------------------------------------------------------------------------------------- constructors

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, device: str | torch.device = "cpu", **kw: Any
    ) -> NativeStarcoder2:
        d = Path(directory)
        cfg = Starcoder2Config.from_file(d / "config.json")
        with torch.inference_mode():
            return cls(cfg, SafetensorsSource(d, torch.device(device)), **kw)

    @classmethod
    def from_state_dict(
        cls, cfg: Starcoder2Config, tensors: Mapping[str, torch.Tensor], *, device: str | torch.device, **kw: Any
    ) -> NativeStarcoder2:
        with torch.inference_mode():
            return cls(cfg, DictSource(tensors, torch.device(device)), **kw)

    @classmethod
    def random(
        cls,
        cfg: Starcoder2Config,
        *,
        device: str | torch.device,
        seed: int = 0,
        quant: str = "bf16",
        **kw: Any,
    ) -> NativeStarcoder2:
        """Random weights built directly on `device`, layer by layer, in the activation dtype."""
        dev = torch.device(device)
        dtype = activation_dtype(quant, kw.get("compute_dtype"), dev)
        with torch.inference_mode():
            state = random_state_dict(cfg, dev, dtype, seed)
            model = cls(cfg, DictSource(state, dev), quant=quant, **kw)
            del state
        return model

    def set_deterministic(self, on: bool) -> None:
        """The deterministic mode (invariant.py): every linear and the head on batch-invariant products, no fusion
        that exists only for some numbers of rows. Off is the fast path."""
        self.deterministic = on
        for module in self.modules():
            if isinstance(module, DenseLinear | QuantLinearBase):
                module.invariant = on

    def set_fast_paths(self, fast_paths: FastPaths) -> None:
        """The fast-path switches (fast_paths.py): the decoders read cuda_graphs and decode_kernel, the fp8 prefill
        fp8_fused, and every quantized linear its cuda_rtc."""
        self.fast_paths = fast_paths
        for module in self.modules():
            if isinstance(module, QuantLinearBase):
                module.cuda_rtc = fast_paths.cuda_rtc

    # ---------------------------------------------------------------------------------------------- forward

    def _pack(self, sequences: list[torch.Tensor]) -> _Packed:
        if not sequences:
            raise ModelError("no sequences to run")
        lens: list[int] = []
        for i, s in enumerate(sequences):
            if s.dim() != 1 or s.dtype not in (torch.int64, torch.int32):
                raise ModelError(f"sequence {i} must be a 1-D integer tensor, got {s.dtype} {tuple(s.shape)}")
            if s.numel() == 0:
                raise ModelError(f"sequence {i} is empty")
            if s.numel() > self.cfg.max_position_embeddings:
                raise ModelError(
                    f"sequence {i} has {s.numel()} tokens, more than the model's maximum of "
                    f"{self.cfg.max_position_embeddings}",
                    hint="score long texts in windows (score's max_length/stride) or cut the context",
                )
            lens.append(int(s.numel()))
        ids = torch.cat([s.to(torch.int64) for s in sequences]).to(self.device, non_blocking=True)
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ModelError(f"token id {lo if lo < 0 else hi} is outside the vocabulary [0, {self.cfg.vocab_size})")
        bounds = [0]
        for n in lens:
            bounds.append(bounds[-1] + n)
        positions = torch.cat([torch.arange(n, dtype=torch.int32) for n in lens]).to(self.device, non_blocking=True)
        cu = torch.tensor(bounds, dtype=torch.int32).to(self.device, non_blocking=True)
        return _Packed(ids, positions, cu, bounds, max(lens))

    def _mlp(self, layer: _Layer, h: Any) -> torch.Tensor:
        """c_proj(gelu_tanh(c_fc(h))). `h` is a tensor, or on the fp8 prefill path the quant.fp8.QuantizedRows that
        _add_norm made for c_fc: then c_fc runs on the fp8 tensor cores (bias in its epilogue, bf16 out) and GELU
        is fused with the per-token quantization of c_proj's input (kernels/fused_quant.py)."""
        fc = layer.fc
        if not isinstance(h, torch.Tensor):
            g = fc(h)
            if self._fp8_input(layer.proj, g.shape[0]):
                from .kernels.fused_quant import gelu_quant_rows
                from .quant.fp8 import FP8_DTYPE, QuantizedRows

                q, s = gelu_quant_rows(g, FP8_DTYPE)
                return layer.proj(QuantizedRows(q, s, g.dtype))
            return layer.proj(F.gelu(g, approximate="tanh"))
        if self.deterministic:
            return layer.proj(F.gelu(fc(h), approximate="tanh"))
        if self.fuse_gelu and isinstance(fc, DenseLinear) and fc.bias is not None:
            # cuBLASLt GELU(tanh) epilogue: bias + GELU fused into the c_fc GEMM
            h = torch._addmm_activation(fc.bias, h, fc.weight.t(), use_gelu=True)
        elif self.fuse_gelu and isinstance(fc, QuantLinearBase):
            h = fc.forward_gelu(h)  # quantized linears offer the same fusion (quant/common.py)
        else:
            h = F.gelu(fc(h), approximate="tanh")
        return layer.proj(h)

    def hidden_states(
        self, packed: _Packed, kv_out: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """Final-normed hidden states [N, hidden] of the packed tokens. With `kv_out`, each layer's rotated keys
        and values ([N, Hkv, D] each) are appended to it (the decoder's prefill)."""
        cfg = self.cfg
        n = packed.ids.shape[0]
        hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        shape = (cfg.hidden_size,)
        eps = cfg.norm_epsilon
        x = F.embedding(packed.ids, self.embed)
        layers = list(self.layers)
        h = F.layer_norm(x, shape, layers[0].ln1_w, layers[0].ln1_b, eps)
        for i, layer in enumerate(layers):
            assert isinstance(layer, _Layer)
            qkv = layer.qkv(h).view(n, hq + 2 * hkv, d)
            del h
            apply_rope_inplace(qkv, packed.positions, self.rope, hq + hkv)
            if kv_out is not None:
                kv_out.append((qkv[:, hq : hq + hkv].clone(), qkv[:, hq + hkv :].clone()))
            a = packed_attention(
                qkv[:, :hq],
                qkv[:, hq : hq + hkv],
                qkv[:, hq + hkv :],
                packed.cu_seqlens,
                packed.max_seqlen,
                cfg.sliding_window,
                self.attn,
                bounds=packed.bounds,
            )
            del qkv
            h = self._add_norm(x, layer.o(a.view(n, hq * d)), layer.ln2_w, layer.ln2_b, feeds=layer.fc)
            del a
            y = self._mlp(layer, h)
            del h
            if i + 1 < len(layers):
                nxt = layers[i + 1]
                assert isinstance(nxt, _Layer)
                h = self._add_norm(x, y, nxt.ln1_w, nxt.ln1_b, feeds=nxt.qkv)
            else:
                h = self._add_norm(x, y, self.norm_w, self.norm_b)
            del y
        return h

    def _add_norm(
        self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, feeds: nn.Module | None = None
    ) -> Any:
        """x += y (the residual), then LayerNorm(x): one fused Triton pass on CUDA. `feeds` is the one linear that
        takes the result; when it is an fp8 linear on its prefill path (`_fp8_input`), the same pass quantizes the
        result per token and returns quant.fp8.QuantizedRows for it instead of a tensor."""
        if feeds is not None and self._fp8_input(feeds, x.shape[0]):
            from .kernels.fused_quant import add_layernorm_quant_rows
            from .quant.fp8 import FP8_DTYPE, QuantizedRows

            q, s = add_layernorm_quant_rows(x, y, w, b, self.cfg.norm_epsilon, FP8_DTYPE)
            return QuantizedRows(q, s, x.dtype)
        if x.device.type == "cuda":
            from .kernels.add_layernorm import add_layernorm_

            return add_layernorm_(x, y, w, b, self.cfg.norm_epsilon)
        x += y
        return F.layer_norm(x, (self.cfg.hidden_size,), w, b, self.cfg.norm_epsilon)

    def _fp8_input(self, linear: nn.Module, rows: int) -> bool:
        """Whether the op producing `linear`'s input should quantize it (fused add+LayerNorm or GELU) instead of the
        linear: an fp8 linear on its prefill path on CUDA (more than small_m_max rows; decode never gets here).
        On unless the fp8_fused switch is off (self.fast_paths: the load op's option, by default EVALPIPE_FP8_FUSED)."""
        from .quant.fp8 import Fp8Linear

        return (
            isinstance(linear, Fp8Linear)
            and not self.deterministic
            and self.device.type == "cuda"
            and rows > linear.options.small_m_max
            and self.fast_paths.use_fp8_fused
        )

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        if self.deterministic:
            return invariant_linear(h, self.lm_head, None)
        return F.linear(h, self.lm_head)

    # ------------------------------------------------------------------------------------- CausalLMBackend

    @torch.inference_mode()
    def target_logprobs(self, sequences: list[torch.Tensor], *, run_last: bool = True) -> list[torch.Tensor]:
        if run_last:
            packed = self._pack(sequences)
            b = packed.bounds
            rows = torch.cat([torch.arange(b[s], b[s + 1] - 1) for s in range(len(b) - 1)]).to(self.device)
            targets = packed.ids[rows + 1]
            sizes = [b[s + 1] - b[s] - 1 for s in range(len(b) - 1)]
        else:  # the last id of each sequence is a target only: run s[:-1], score s[1:] from all its positions
            if any(s.dim() != 1 or s.numel() < 2 for s in sequences):
                raise ModelError("target_logprobs with run_last=False needs 1-D sequences of at least two ids")
            packed = self._pack([s[:-1] for s in sequences])
            rows = torch.arange(packed.bounds[-1], device=self.device)
            targets = torch.cat([s[1:].to(torch.int64) for s in sequences]).to(self.device, non_blocking=True)
            sizes = [int(s.numel()) - 1 for s in sequences]
        hidden = self.hidden_states(packed)
        lp = target_logprobs_chunked(
            hidden[rows], targets, self._head, chunk_rows=self.chunk_rows, fixed_rows=self.deterministic
        )
        del hidden
        return [t.cpu() for t in torch.split(lp, sizes)]

    @torch.inference_mode()
    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        packed = self._pack(sequences)
        hidden = self.hidden_states(packed)
        last = torch.tensor([e - 1 for e in packed.bounds[1:]], device=self.device)
        return self._head(hidden[last]).float()

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Decoder:
        """Incremental decoding of n samples sharing one prompt (the generation op's interface, as HfBackend):
        a decoding.StaticDecoder, its cache allocated once for `capacity` positions (prompt included; default
        prompt + 256, capped at the model's maximum), one CUDA graph replay per step on CUDA."""
        from .decoding import StaticDecoder

        return StaticDecoder(self, prompt, n, capacity)

    def open_batch_decoder(
        self, prompts: list[torch.Tensor], counts: list[int], capacity: int | None = None
    ) -> Decoder:
        """Decoding of counts[i] samples of prompts[i] for every i in one batch (rows in that order), the prompts
        prefilled together through the packed path; `capacity` as for open_decoder (longest prompt + budget)."""
        from .decoding import StaticDecoder

        return StaticDecoder(self, prompts, counts, capacity)

    @torch.inference_mode()
    def logits(self, sequence: torch.Tensor) -> torch.Tensor:
        """Full float32 logits [L, vocab] of one sequence. For parity tests only: this is the waste the scoring
        path avoids."""
        return self._head(self.hidden_states(self._pack([sequence]))).float()

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        """Benchmark unit: ids [B, T] on the device -> float32 [B*(T-1)] target log-probs, all on device (no
        host copies), exactly the work `target_logprobs` does for B rows of T tokens."""
        bsz, t = ids.shape
        with torch.inference_mode():
            packed = _Packed(
                ids=ids.reshape(-1),
                positions=torch.arange(t, device=self.device, dtype=torch.int32).repeat(bsz),
                cu_seqlens=torch.arange(0, (bsz + 1) * t, t, device=self.device, dtype=torch.int32),
                bounds=list(range(0, (bsz + 1) * t, t)),
                max_seqlen=t,
            )
            hidden = self.hidden_states(packed).view(bsz, t, -1)
            targets = ids[:, 1:].reshape(-1)
            return target_logprobs_chunked(
                hidden[:, :-1].reshape(-1, hidden.shape[-1]), targets, self._head, chunk_rows=self.chunk_rows
            )


def build_native_backend(
    model_dir: Path,
    config: dict[str, Any],
    quant: str,
    attn: str,
    device: torch.device,
    architecture: str,
    *,
    compute_dtype: str | None = None,
) -> NativeStarcoder2:
    """loading.select_backend's builder for StarCoder2 checkpoints. `compute_dtype` (bf16/fp16/fp32) is the
    activation dtype of the quantized modes (nf4 with fp32 compute, ...)."""
    cfg = Starcoder2Config.from_dict(config, source=str(model_dir / "config.json"))
    with torch.inference_mode():
        return NativeStarcoder2(
            cfg, SafetensorsSource(model_dir, device), quant=quant, attn=attn, compute_dtype=compute_dtype
        )


def hf_reference_model(
    cfg: Starcoder2Config,
    tensors: Mapping[str, torch.Tensor],
    *,
    device: str | torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
) -> Callable[..., Any]:
    """HF transformers' Starcoder2ForCausalLM holding the same weights: the parity reference and the benchmark
    baseline."""
    from transformers import Starcoder2Config as HfConfig
    from transformers import Starcoder2ForCausalLM

    hf_cfg = HfConfig(**cfg.to_hf_dict())
    hf_cfg._attn_implementation = attn_implementation
    with torch.device(device):
        model = Starcoder2ForCausalLM(hf_cfg).to(dtype)
    missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise ModelError(f"HF reference: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model.eval().requires_grad_(False)
