"""preset:trained-tiny-starcoder2: the committed trained checkpoint loads offline through the native engine, says how
it was trained (the load result's `trained` block, checked against schemas/engine/load.json), matches HF
transformers on the same weights, and scores Python far better than the random preset does."""

from __future__ import annotations

import json
import math

import pytest
import torch

from evalpipe_engine.loading import load_model
from evalpipe_engine.presets import PRESETS, write_preset_dir
from evalpipe_engine.request_schemas import result_violations
from evalpipe_engine.scoring import score
from evalpipe_engine.trained_presets import TRAINED_PRESETS, TRAINED_TINY_STARCODER2

CHECKPOINT = TRAINED_PRESETS[TRAINED_TINY_STARCODER2]
PYTHON_TEXT = (
    "import os\n\n\ndef list_python_files(root):\n"
    '    """Return the paths of the .py files under root."""\n'
    "    found = []\n"
    "    for directory, _dirs, files in os.walk(root):\n"
    "        for name in files:\n"
    '            if name.endswith(".py"):\n'
    "                found.append(os.path.join(directory, name))\n"
    "    return sorted(found)\n"
)


def _perplexity(loaded: object, text: str) -> float:
    result = score(loaded, {"rows": [{"index": 0, "text": text}]}, lambda kind, data: None)  # type: ignore[arg-type]
    row = result["rows"][0]
    return math.exp(row["nll_sum"] / row["n_scored_tokens"])


def test_the_committed_checkpoint_is_small_and_complete() -> None:
    names = {p.name for p in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"} <= names
    assert (CHECKPOINT / "model.safetensors").stat().st_size <= 8 * 1024 * 1024
    record = json.loads((CHECKPOINT / "training.json").read_text())
    assert record["status"] == "done"
    assert record["corpus"]["train"]["files"] > 0 and record["corpus"]["held_out"]["files"] > 0
    assert record["training"]["tokens_seen"] > 0 and record["loss_curve"]
    assert record["loss_curve"][-1]["loss"] < record["loss_curve"][0]["loss"]
    assert math.isfinite(record["held_out"]["perplexity"])


def test_the_load_result_says_how_the_weights_were_trained() -> None:
    assert TRAINED_TINY_STARCODER2 in PRESETS
    loaded = load_model({"model": f"preset:{TRAINED_TINY_STARCODER2}", "device": "cpu", "seed": 7})
    described = loaded.describe()
    assert result_violations("load", described) == []
    assert described["source"] == "preset" and described["seed"] is None  # the seed does not change trained weights
    assert described["architecture"] == "Starcoder2ForCausalLM" and described["backend"] == "NativeStarcoder2"
    trained = described["trained"]
    record = json.loads((CHECKPOINT / "training.json").read_text())
    assert trained["record"] == "cuda/evalpipe_engine/trained/tiny-starcoder2/training.json"
    assert trained["seed"] == record["seed"]
    assert trained["corpus"]["file_list_sha256"] == record["corpus"]["file_list_sha256"]
    assert trained["held_out_perplexity"] == record["held_out"]["perplexity"]
    assert "StarCoder2" in trained["note"]


def test_the_random_preset_has_no_trained_block() -> None:
    described = load_model({"model": "preset:tiny-starcoder2", "device": "cpu"}).describe()
    assert "trained" not in described and described["seed"] == 0


def test_trained_weights_score_python_far_better_than_random_ones() -> None:
    trained = _perplexity(load_model({"model": f"preset:{TRAINED_TINY_STARCODER2}", "device": "cpu"}), PYTHON_TEXT)
    random = _perplexity(load_model({"model": "preset:tiny-starcoder2", "device": "cpu"}), PYTHON_TEXT)
    assert trained * 10 < random


def test_native_logits_match_hf_transformers_on_the_trained_weights() -> None:
    from transformers import AutoModelForCausalLM

    loaded = load_model({"model": f"preset:{TRAINED_TINY_STARCODER2}", "device": "cpu", "quant": "fp32"})
    ids = torch.tensor([0, *loaded.tokenizer.encode(PYTHON_TEXT).ids])
    ours = loaded.backend.logits(ids)
    hf = AutoModelForCausalLM.from_pretrained(str(CHECKPOINT), dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = hf(input_ids=ids[None]).logits[0].float()
    assert float((ours - theirs).norm() / theirs.norm()) < 1e-5


def test_write_preset_copies_the_committed_checkpoint(tmp_path: pytest.TempPathFactory) -> None:
    out = write_preset_dir(tmp_path, 3, TRAINED_TINY_STARCODER2)  # type: ignore[arg-type]
    assert (out / "model.safetensors").read_bytes() == (CHECKPOINT / "model.safetensors").read_bytes()
