"""Built-in models with trained weights: `preset:trained-tiny-starcoder2`, a 3.4M-parameter StarCoder2-architecture
model that bench/train_reference.py trained on the Python files of an interpreter's library paths, committed under
trained/ with its tokenizer and training record (training.json). The smoke run's model.

`trained_provenance(directory)` reads such a record (this preset's, or any checkpoint the script wrote, such as the
reference model) into the load result's `trained` block: how the weights were made, never a claim about
StarCoder2's own weights or quality.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINED_TINY_STARCODER2 = "trained-tiny-starcoder2"
TRAINED_DIR = Path(__file__).resolve().parent / "trained"
TRAINED_PRESETS: dict[str, Path] = {TRAINED_TINY_STARCODER2: TRAINED_DIR / "tiny-starcoder2"}
RECORD_NAME = "training.json"
_REPO_ROOT = Path(__file__).resolve().parents[2]
NOTE = (
    "a small model trained by evalpipe's bench/train_reference.py on Python files; its figures say nothing about "
    "StarCoder2's own weights"
)


def trained_provenance(directory: Path) -> dict[str, Any] | None:
    """The `trained` block for a checkpoint directory holding a train_reference record, else None."""
    path = directory / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("benchmark") != "train_reference":
        return None
    corpus = record.get("corpus") or {}
    train = corpus.get("train") or {}
    training = record.get("training") or {}
    held = record.get("held_out") or {}
    try:
        shown = str(path.resolve().relative_to(_REPO_ROOT))
    except ValueError:
        shown = str(path)
    return {
        "record": shown,
        "script": "bench/train_reference.py",
        "command": record.get("command"),
        "seed": record.get("seed"),
        "corpus": {
            "source": corpus.get("source"),
            "files": train.get("files"),
            "bytes": train.get("bytes"),
            "tokens": train.get("tokens"),
            "file_list_sha256": corpus.get("file_list_sha256"),
        },
        "steps": training.get("steps_done"),
        "tokens_seen": training.get("tokens_seen"),
        "held_out_perplexity": held.get("perplexity"),
        "card": record.get("card"),
        "date_utc": record.get("date_utc"),
        "status": record.get("status"),
        "note": NOTE,
    }
