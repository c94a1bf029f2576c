"""bench/train_reference.py on the CPU: a few steps on a small sample of the interpreter's own Python files write a
checkpoint our engine loads (with its `trained` block) and a training record; the same seed repeats the run bit for
bit, another seed does not."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from evalpipe_engine.loading import load_model
from evalpipe_engine.presets import starcoder2_tokenizer_config, tokenizer_config_text

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ["--size", "tiny", "--steps", "3", "--max-corpus-bytes", "300000", "--batch", "2", "--device", "cpu"]
SMOKE += [
    "--eval-tokens",
    "2048",
    "--context",
    "128",
    "--log-every",
    "1",
    "--vocab-size",
    "400",
    "--tokenizer-bytes",
    "300000",
]


def _train(out: Path, seed: int) -> dict:
    args = [sys.executable, str(ROOT / "bench" / "train_reference.py"), *SMOKE, "--seed", str(seed), "--out", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["out"] == str(out)
    return json.loads((out / "training.json").read_text())


def test_a_cpu_smoke_writes_a_loadable_checkpoint_and_repeats_by_seed(tmp_path: Path) -> None:
    record = _train(tmp_path / "a", seed=5)
    assert record["status"] == "done" and record["seed"] == 5
    assert record["training"]["steps_done"] == 3 and len(record["loss_curve"]) == 3
    assert record["training"]["tokens_seen"] == 3 * 2 * 128 and record["config"]["max_position_embeddings"] == 128
    corpus = record["corpus"]
    assert corpus["train"]["files"] > 0 and corpus["train"]["bytes"] >= 300000 and corpus["train"]["tokens"] > 0
    assert len(corpus["file_list_sha256"]) == 64 and corpus["max_bytes"] == 300000
    assert math.isfinite(record["held_out"]["perplexity"]) and record["held_out"]["scored_tokens"] > 0
    assert record["command"].startswith("python3 bench/train_reference.py --size tiny")
    written = (tmp_path / "a" / "tokenizer_config.json").read_text()
    assert written == tokenizer_config_text(starcoder2_tokenizer_config(128))

    loaded = load_model({"model": str(tmp_path / "a"), "device": "cpu"})
    described = loaded.describe()
    assert described["n_params"] == record["n_params"]
    assert described["trained"]["seed"] == 5 and described["trained"]["steps"] == 3

    again = _train(tmp_path / "b", seed=5)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert [p["loss"] for p in again["loss_curve"]] == [p["loss"] for p in record["loss_curve"]]
    _train(tmp_path / "c", seed=6)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()
