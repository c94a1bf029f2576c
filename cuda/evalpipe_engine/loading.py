"""Resolve a model reference (preset, local directory, hub id), validate the checkpoint, pick a backend, load.

`load_model(params)` is what the `load` op calls; `select_backend(...)` is the one place that decides which
implementation serves a model (the native engine for StarCoder2, Llama, Qwen2 and Mistral; HF transformers for the
others).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from .backend import CausalLMBackend, ModelFacts
from .errors import BadRequest, EngineError, NotFound, Unsupported
from .fast_paths import FastPaths
from .presets import PRESET_PREFIX, PRESETS, parse_preset, write_preset_dir
from .quant.modes import QuantError, check_mode
from .request_schemas import check_params
from .sampling import SAMPLER
from .trained_presets import TRAINED_PRESETS, trained_provenance

log = logging.getLogger(__name__)

# The choices schemas/engine/load.json allows (cuda/tests/test_request_schemas.py keeps the two equal).
ATTN_MODES: tuple[str, ...] = ("eager", "sdpa", "flash")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
BACKENDS: tuple[str, ...] = ("auto", "native", "hf")
HUB_PATTERNS: list[str] = [
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Provenance:
    source: str  # "preset" | "local" | "hub"
    model_id: str
    revision: str | None
    weights_sha256: str
    directory: str
    seed: int | None
    trained: dict[str, Any] | None = None  # the checkpoint's training record, when evalpipe trained it


@dataclass
class LoadedModel:
    backend: CausalLMBackend
    tokenizer: Tokenizer
    facts: ModelFacts
    provenance: Provenance
    quant: str
    attn: str
    compute_dtype: str | None
    eos_token_ids: tuple[int, ...]
    load_seconds: float
    deterministic: bool = False  # the batch-invariant mode is on (invariant.py)
    fast_paths: FastPaths = field(
        default_factory=FastPaths
    )  # the fast-path switches as resolved at load (fast_paths.py)
    # BOS/EOS as used (loading.special_tokens); empty for a LoadedModel built by hand (tests): the earlier rule
    special_tokens: dict[str, Any] = field(default_factory=dict)

    @property
    def score_add_bos(self) -> bool:
        """The score op's add_bos default."""
        return bool(self.special_tokens.get("score_add_bos", self.facts.bos_token_id is not None))

    @property
    def generate_add_bos(self) -> bool:
        """The generate op's add_bos default."""
        return bool(self.special_tokens.get("generate_add_bos", False))

    def describe(self) -> dict[str, Any]:
        """The `load` op's result (also `info.model`)."""
        f, p = self.facts, self.provenance
        return {
            "model_id": p.model_id,
            "source": p.source,
            "architecture": f.architecture,
            "revision": p.revision,
            "seed": p.seed,
            "weights_sha256": p.weights_sha256,
            "n_params": f.n_params,
            "vocab_size": f.vocab_size,
            "max_position_embeddings": f.max_position_embeddings,
            "sliding_window": f.sliding_window,
            "bos_token_id": f.bos_token_id,
            "eos_token_id": f.eos_token_id,
            "quant": self.quant,
            "attn": self.attn,
            "compute_dtype": self.compute_dtype,
            "device": f.device,
            "dtype": f.dtype,
            "backend": type(self.backend).__name__,
            "batching": "continuous" if self.backend.batches_prompts and self.backend.admits_rows else "static",
            "sampler": SAMPLER,
            "load_seconds": round(self.load_seconds, 3),
            "weight_bytes": f.weight_bytes,
            "deterministic": self.deterministic,
            "fast_paths": self.fast_paths.to_json(),
            **({"special_tokens": dict(self.special_tokens)} if self.special_tokens else {}),
            **({"trained": dict(p.trained)} if p.trained else {}),
        }


# --------------------------------------------------------------------------------------------------------------
# Parameters


def _opt_str(params: dict[str, Any], key: str) -> str | None:
    """A schema-checked optional string parameter (absent or null: None)."""
    value = params.get(key)
    return None if value is None else str(value)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise Unsupported("device cuda was requested but torch sees no CUDA device", hint="use device cpu or auto")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------------------
# Finding the checkpoint

_preset_dirs: dict[tuple[str, int], Path] = {}


def _preset_dir(name: str, seed: int) -> Path:
    """Materialise a preset once per engine process into a temporary directory removed at exit (a trained preset
    is its committed directory, whatever the seed)."""
    if name in TRAINED_PRESETS:
        return TRAINED_PRESETS[name]
    key = (name, seed)
    if key not in _preset_dirs:
        tmp = Path(tempfile.mkdtemp(prefix=f"evalpipe-{name}-seed{seed}-"))
        atexit.register(shutil.rmtree, tmp, True)
        _preset_dirs[key] = write_preset_dir(tmp, seed, name)
    return _preset_dirs[key]


def _looks_like_path(model: str) -> bool:
    """Absolute, relative-with-dot or home paths are always local; anything else may be a hub id."""
    return model.startswith(("/", "./", "../", "~")) or model in (".", "..")


def _download_from_hub(repo_id: str, revision: str | None) -> tuple[Path, str | None]:
    """snapshot_download into the standard HF cache (HF_HOME / HF_HUB_CACHE); honours HF_TOKEN, HF_HUB_OFFLINE."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency of transformers
        raise Unsupported("huggingface_hub is not installed", hint="pip install huggingface_hub") from exc
    hint = (
        f"check the id and revision, or use a local directory (config.json + *.safetensors + tokenizer.json) "
        f"or {PRESET_PREFIX}{PRESETS[0]}"
    )
    try:
        path = snapshot_download(
            repo_id=repo_id,
            revision=revision,
            allow_patterns=HUB_PATTERNS,
            token=os.environ.get("HF_TOKEN") or None,
        )
    except Exception as exc:
        kind = type(exc).__name__
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        where = " (HF_HUB_OFFLINE is set and it is not in the local cache)" if offline else ""
        if kind in ("GatedRepoError",):
            hint = "accept the model's licence on the hub and set HF_TOKEN"
        raise NotFound(
            f"model {repo_id!r}{'@' + revision if revision else ''} could not be fetched from the HF hub{where}: "
            f"{kind}: {first}",
            hint=hint,
        ) from exc
    snapshot = Path(path)
    return snapshot, snapshot.name if snapshot.parent.name == "snapshots" else revision


def resolve_model(model: str, revision: str | None, seed: int) -> tuple[Path, str, str, str | None]:
    """-> (directory, source, model_id, revision)."""
    preset = parse_preset(model)
    if preset is not None:
        if preset not in PRESETS:
            raise NotFound(
                f"unknown preset {model!r}", hint=f"use one of {', '.join(PRESET_PREFIX + p for p in PRESETS)}"
            )
        if revision is not None:
            raise BadRequest("revision applies to hub ids only, not to presets", hint="drop revision")
        return _preset_dir(preset, seed), "preset", model, None
    local = Path(model).expanduser()
    if local.exists() or _looks_like_path(model):
        if not local.exists():
            raise NotFound(
                f"model directory {model} does not exist",
                hint=f"give a directory with config.json, *.safetensors and tokenizer.json, a hub id, "
                f"or {PRESET_PREFIX}{PRESETS[0]}",
            )
        if not local.is_dir():
            raise NotFound(f"model path {model} is not a directory", hint="give the checkpoint's directory")
        if revision is not None:
            raise BadRequest("revision applies to hub ids only, not to local directories", hint="drop revision")
        resolved = local.resolve()
        return resolved, "local", str(resolved), None
    if not _HUB_ID.match(model):
        raise NotFound(
            f"model {model!r} is neither an existing directory nor a valid hub id",
            hint=f"give a local directory, a hub id such as bigcode/starcoder2-3b, or {PRESET_PREFIX}{PRESETS[0]}",
        )
    directory, resolved_revision = _download_from_hub(model, revision)
    return directory, "hub", model, resolved_revision


# --------------------------------------------------------------------------------------------------------------
# Validating the checkpoint


def _check_safetensors(path: Path) -> None:
    """Read the header and check that the file holds every byte the header promises; errors name the file."""
    hint = "re-download or re-export the checkpoint"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise NotFound(f"checkpoint file {path} is not a safetensors file (only {size} bytes)", hint=hint)
            (header_len,) = struct.unpack("<Q", head)
            if header_len > size - 8 or header_len > 100 << 20:
                raise NotFound(f"checkpoint file {path} is corrupt: bad safetensors header length", hint=hint)
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        raise NotFound(f"checkpoint file {path} cannot be read: {exc.strerror or exc}", hint=hint) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotFound(f"checkpoint file {path} is corrupt: its safetensors header is not JSON", hint=hint) from exc
    if not isinstance(header, dict):
        raise NotFound(f"checkpoint file {path} is corrupt: unexpected safetensors header", hint=hint)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise NotFound(f"checkpoint file {path} is corrupt: tensor {name} has no valid data_offsets", hint=hint)
        end = max(end, offsets[1])
    if 8 + header_len + end > size:
        raise NotFound(
            f"checkpoint file {path} is truncated: the header promises {8 + header_len + end} bytes, "
            f"the file has {size}",
            hint=hint,
        )


def validate_model_dir(directory: Path) -> tuple[dict[str, Any], list[Path]]:
    """-> (config.json contents, safetensors files). Raises NotFound/Unsupported naming the offending file."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise NotFound(f"{config_path} is missing", hint="a model directory needs config.json from the checkpoint")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotFound(f"{config_path} cannot be read as JSON: {exc}", hint="re-download the checkpoint") from exc
    if not isinstance(config, dict):
        raise NotFound(f"{config_path} is not a JSON object", hint="re-download the checkpoint")
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise Unsupported(f"{config_path} has no model_type", hint="a transformers checkpoint names its model_type")
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        import transformers

        raise Unsupported(
            f"model_type {model_type!r} in {config_path} is not known to transformers {transformers.__version__}",
            hint="upgrade transformers or use a supported architecture",
        )
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise NotFound(
            f"no *.safetensors weights in {directory}",
            hint="evalpipe loads safetensors only (convert .bin weights with transformers' save_pretrained)",
        )
    for f in files:
        _check_safetensors(f)
    if not (directory / "tokenizer.json").is_file():
        raise NotFound(f"{directory / 'tokenizer.json'} is missing", hint="the model directory needs tokenizer.json")
    return config, files


def weights_sha256(files: list[Path]) -> str:
    """sha256 of the weights, streamed: one file -> that file's sha256; several -> sha256 over the lines
    `<file name> <file sha256>\\n` in name order."""
    digests: list[tuple[str, str]] = []
    for f in sorted(files, key=lambda p: p.name):
        h = hashlib.sha256()
        with f.open("rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                h.update(chunk)
        digests.append((f.name, h.hexdigest()))
    if len(digests) == 1:
        return digests[0][1]
    return hashlib.sha256("".join(f"{n} {d}\n" for n, d in digests).encode()).hexdigest()


def load_tokenizer(directory: Path) -> Tokenizer:
    path = directory / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise NotFound(f"{path} cannot be read as a tokenizer: {exc}", hint="re-download the checkpoint") from exc


def architecture_of(config: dict[str, Any]) -> str:
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return str(config.get("model_type"))


# --------------------------------------------------------------------------------------------------------------
# Backend choice and loading

BackendBuilder = Callable[..., CausalLMBackend]
"""builder(model_dir, config, quant, attn, device, architecture, *, compute_dtype) -> backend"""


def select_backend(
    config: dict[str, Any], quant: str, attn: str, device: torch.device, backend: str = "auto"
) -> BackendBuilder:
    """Which implementation serves this model: the native engine (models/: StarCoder2, Llama, Qwen2, Mistral; every
    quant mode, eager/sdpa/flash) for the architectures it implements, HF transformers for every other one (one log
    line says so; it raises `unsupported` for the modes it lacks). `backend` "hf" forces HF transformers (the
    parity reference); "native" insists on the native engine. A native architecture whose config holds a field the
    native engine does not implement (an unknown RoPE scaling, attention biases other than Qwen2's) is refused with
    the field named, never run wrong."""
    from .hf_backend import build_hf_backend
    from .models import NATIVE_ARCHITECTURES, build_native_backend, native_architecture, native_config

    if backend == "hf":
        return build_hf_backend
    if native_architecture(config) is not None:
        try:
            native_config(config)  # the refusal naming an unsupported field, before any weight is read
        except EngineError as exc:
            if exc.error_type == "unsupported":
                raise
            # anything else (a size missing, ...) the builder reports with the checkpoint's path
        return build_native_backend
    name = architecture_of(config)
    if backend == "native":
        raise Unsupported(
            f"the native engine implements {', '.join(NATIVE_ARCHITECTURES)}, not {name}",
            hint="use backend auto or hf for other architectures (evalpipe: --model-impl auto or hf)",
        )
    log.info("%s is not an architecture of the native engine: loading it with HF transformers", name)
    return build_hf_backend


# The Llama family's tokenizers say whether a text starts with BOS (add_bos_token: Llama, DeepSeek-Coder, CodeLlama
# and Mistral true, Qwen2 false); StarCoder2 and the HF-backend architectures keep the engine's earlier rule.
BOS_FOLLOWS_TOKENIZER: tuple[str, ...] = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _ids(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [int(v) for v in items if isinstance(v, int) and not isinstance(v, bool)]


def special_tokens(directory: Path, config: dict[str, Any], architecture: str) -> dict[str, Any]:
    """BOS/EOS as the engine uses them, stated in the load result: `eos_token_ids` (config.json's eos_token_id,
    int or list, then generation_config.json's), `add_bos_token` (tokenizer_config.json's, or null),
    `score_add_bos` / `generate_add_bos` (the score and generate ops' add_bos default) and `rule` (where they came
    from)."""
    eos = _ids(config.get("eos_token_id"))
    for e in _ids(_read_json(directory / "generation_config.json").get("eos_token_id")):
        if e not in eos:
            eos.append(e)
    bos = config.get("bos_token_id")
    has_bos = isinstance(bos, int) and not isinstance(bos, bool)
    flag = _read_json(directory / "tokenizer_config.json").get("add_bos_token")
    add_bos_token = flag if isinstance(flag, bool) else None
    if architecture in BOS_FOLLOWS_TOKENIZER and add_bos_token is not None:
        score_bos = generate_bos = add_bos_token and has_bos
        rule = "tokenizer_config.json add_bos_token (the Llama family's rule)"
    else:
        score_bos, generate_bos = has_bos, False
        rule = "BOS before scored texts when the model has one; prompts as given"
    return {
        "bos_token_id": bos if has_bos else None,
        "eos_token_ids": eos,
        "add_bos_token": add_bos_token,
        "score_add_bos": score_bos,
        "generate_add_bos": generate_bos,
        "rule": rule,
    }


def load_model(params: dict[str, Any]) -> LoadedModel:
    """The `load` op: params checked against schemas/engine/load.json, then the model found, checked and built."""
    check_params("load", params)
    model = str(params["model"])
    if not model.strip():
        raise BadRequest(
            "model is required (a string)",
            hint=f"give a local directory, a hub id or {PRESET_PREFIX}{PRESETS[0]}",
        )
    revision = _opt_str(params, "revision")
    attn = _opt_str(params, "attn") or "sdpa"
    device = resolve_device(_opt_str(params, "device") or "auto")
    quant = _opt_str(params, "quant") or ("bf16" if device.type == "cuda" else "fp32")
    compute_dtype = _opt_str(params, "compute_dtype")
    backend_choice = _opt_str(params, "backend") or "auto"
    try:
        check_mode(quant)
    except QuantError as exc:
        raise BadRequest(str(exc)) from exc
    seed = int(params.get("seed", 0))
    deterministic: bool | None = params.get("deterministic")
    fast_paths = FastPaths.resolve(params.get("fast_paths"))

    started = time.perf_counter()
    directory, source, model_id, resolved_revision = resolve_model(model.strip(), revision, seed)
    config, files = validate_model_dir(directory)
    tokenizer = load_tokenizer(directory)
    architecture = architecture_of(config)
    builder = select_backend(config, quant, attn, device, backend_choice)
    try:
        backend = builder(directory, config, quant, attn, device, architecture, compute_dtype=compute_dtype)
    except QuantError as exc:
        raise (Unsupported if exc.error_type == "unsupported" else BadRequest)(str(exc)) from exc
    except OSError as exc:
        raise NotFound(f"cannot load the checkpoint in {directory}: {exc}", hint="re-download the checkpoint") from exc
    deterministic_on = _set_deterministic(backend, deterministic, device)
    backend.set_fast_paths(fast_paths)
    tokens = special_tokens(directory, config, architecture)
    eos_ids = tuple(tokens["eos_token_ids"])
    provenance = Provenance(
        source=source,
        model_id=model_id,
        revision=resolved_revision,
        weights_sha256=weights_sha256(files),
        directory=str(directory),
        seed=seed if source == "preset" and parse_preset(model_id) not in TRAINED_PRESETS else None,
        trained=trained_provenance(directory),
    )
    return LoadedModel(
        backend=backend,
        tokenizer=tokenizer,
        facts=backend.facts,
        provenance=provenance,
        quant=quant,
        attn=attn,
        compute_dtype=compute_dtype,
        eos_token_ids=eos_ids,
        load_seconds=time.perf_counter() - started,
        deterministic=deterministic_on,
        fast_paths=fast_paths,
        special_tokens=tokens,
    )


def _set_deterministic(backend: CausalLMBackend, wanted: bool | None, device: torch.device) -> bool:
    """Turn the batch-invariant mode on or off. Unset: on for CPU, off (the fast path) on CUDA; a backend that
    cannot give it (HF transformers) is off unless asked for, and asking for it there is an error."""
    if not backend.can_be_deterministic:
        if wanted:
            raise Unsupported(
                f"{type(backend).__name__} (HF transformers) cannot guarantee batch-invariant results: its matmuls "
                "and attention kernels pick their reduction order by batch shape, so a row's logits and a sample's "
                "tokens may change with what shares its batch",
                hint="drop deterministic (results then may depend on the batch size), or use a StarCoder2 checkpoint "
                "on the native engine",
            )
        return False
    on = device.type == "cpu" if wanted is None else wanted
    backend.set_deterministic(on)
    return on
