"""Model resolution, checkpoint validation, weight hashing and the deterministic preset."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CUDA_DIR, REPO_ROOT

from evalpipe_engine.errors import BadRequest, NotFound
from evalpipe_engine.hf_backend import build_hf_backend
from evalpipe_engine.loading import load_model, resolve_model, select_backend, weights_sha256
from evalpipe_engine.presets import write_preset_dir

FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def test_preset_is_deterministic_by_seed(tmp_path: Path) -> None:
    a = write_preset_dir(tmp_path / "a", seed=4)
    b = write_preset_dir(tmp_path / "b", seed=4)
    c = write_preset_dir(tmp_path / "c", seed=5)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_write_preset_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(CUDA_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "evalpipe_engine", "write-preset", str(tmp_path / "cli"), "--seed", "4"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    ref = write_preset_dir(tmp_path / "ref", seed=4)
    for name in FILES:
        assert (tmp_path / "cli" / name).read_bytes() == (ref / name).read_bytes(), name


def test_preset_tokenizer_round_trips_and_has_special_tokens(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(write_preset_dir(tmp_path, 0) / "tokenizer.json"))
    assert tok.token_to_id("<|endoftext|>") == 0 and tok.token_to_id("<file_sep>") == 1
    for text in ["def f(x):\n    return x\n", "naïve ✓ 数字 \t\r\n", "<file_sep>a.py\n"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    assert tok.encode("<file_sep>", add_special_tokens=False).ids == [1]


def test_weights_sha256_single_and_sharded(tmp_path: Path) -> None:
    one = tmp_path / "model.safetensors"
    one.write_bytes(b"abc" * 1_000_000)
    assert weights_sha256([one]) == hashlib.sha256(one.read_bytes()).hexdigest()
    two = tmp_path / "model-00002.safetensors"
    two.write_bytes(b"xyz")
    lines = "".join(
        f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in sorted([one, two], key=lambda p: p.name)
    )
    assert weights_sha256([two, one]) == hashlib.sha256(lines.encode()).hexdigest()


def test_resolution_of_model_references(preset_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory, source, model_id, revision = resolve_model(str(preset_dir), None, 0)
    assert (directory, source, model_id, revision) == (preset_dir.resolve(), "local", str(preset_dir.resolve()), None)
    with pytest.raises(NotFound, match="does not exist"):
        resolve_model("./definitely/not/here", None, 0)
    with pytest.raises(BadRequest, match="revision"):
        resolve_model(str(preset_dir), "main", 0)
    with pytest.raises(NotFound, match="neither an existing directory nor a valid hub id"):
        resolve_model("not a hub id!", None, 0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="bigcode/no-such-model") as info:
        resolve_model("bigcode/no-such-model", None, 0)
    assert "preset:tiny-starcoder2" in (info.value.hint or "")


def test_select_backend_native_for_starcoder2_hf_for_others(preset_dir: Path) -> None:
    import torch

    from evalpipe_engine.model import build_native_backend

    assert select_backend({"model_type": "starcoder2"}, "bf16", "sdpa", torch.device("cpu")) is build_native_backend
    assert select_backend({"model_type": "gpt2"}, "bf16", "sdpa", torch.device("cpu")) is build_hf_backend


def test_load_params_are_checked() -> None:
    with pytest.raises(BadRequest, match="seed"):
        load_model({"model": "preset:tiny-starcoder2", "seed": -1})
    with pytest.raises(BadRequest, match="device"):
        load_model({"model": "preset:tiny-starcoder2", "device": "tpu"})
    with pytest.raises(BadRequest, match="compute_dtype"):
        load_model({"model": "preset:tiny-starcoder2", "compute_dtype": "fp64"})


def test_fp16_and_bf16_load_on_cpu() -> None:
    for quant, dtype in (("bf16", "bfloat16"), ("fp16", "float16")):
        loaded = load_model({"model": "preset:tiny-starcoder2", "quant": quant, "device": "cpu"})
        described = loaded.describe()
        assert described["dtype"] == dtype and described["quant"] == quant
        assert described["weight_bytes"] == 2 * described["n_params"]


def test_info_cli_prints_versions_as_json() -> None:
    import json

    env = {**os.environ, "PYTHONPATH": str(CUDA_DIR), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "evalpipe_engine", "info"], env=env, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    info = json.loads(proc.stdout)
    assert info["device"]["type"] == "cpu" and info["torch"] and info["protocol"] == 1
