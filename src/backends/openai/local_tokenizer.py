"""A local tokenizer for --backend openai's perplexity windows, when the server has no /tokenize.

    python src/backends/openai/local_tokenizer.py SPEC     (PYTHONPATH=cuda, the engine's environment)

SPEC is preset:tiny-starcoder2, a tokenizer.json file, or a model directory holding one. The first stdout line is
{"ready": true, "bos_token_id", "eos_token_id", "vocab_size"}; then each stdin line {"texts": [...]} is answered
by one line {"ids": [[...], ...]}: each text tokenized without special tokens, as the engine's score op does. A
failure is one line {"error": "..."} and exit status 2. The BOS/EOS ids come from the model directory's
config.json (what the engine uses), else tokenizer_config.json's bos_token/eos_token.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _special_id(tokenizer: Any, config: dict[str, Any], token_config: dict[str, Any], name: str) -> int | None:
    value = config.get(f"{name}_token_id")
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int):
        return value
    token = token_config.get(f"{name}_token")
    if isinstance(token, dict):
        token = token.get("content")
    if isinstance(token, str):
        found = tokenizer.token_to_id(token)
        return int(found) if found is not None else None
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def load(spec: str) -> tuple[Any, int | None, int | None]:
    from tokenizers import Tokenizer

    if spec.startswith("preset:"):
        from evalpipe_engine.presets import EOS_TOKEN, build_tokenizer, parse_preset

        if parse_preset(spec) != "tiny-starcoder2":
            raise ValueError(f"unknown preset {spec!r}: use preset:tiny-starcoder2")
        tokenizer = build_tokenizer()
        eos = tokenizer.token_to_id(EOS_TOKEN)
        return tokenizer, eos, eos
    path = Path(spec)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{file} does not exist: give a tokenizer.json, its model directory or preset:tiny-starcoder2")
    tokenizer = Tokenizer.from_file(str(file))
    config = _read_json(file.parent / "config.json")
    token_config = _read_json(file.parent / "tokenizer_config.json")
    return tokenizer, _special_id(tokenizer, config, token_config, "bos"), _special_id(tokenizer, config, token_config, "eos")


def main(argv: list[str]) -> int:
    out = sys.stdout
    if len(argv) != 1:
        out.write(json.dumps({"error": "usage: local_tokenizer.py SPEC"}) + "\n")
        return 2
    try:
        tokenizer, bos, eos = load(argv[0])
    except Exception as exc:  # noqa: BLE001 - one line for the caller, whatever the tokenizers library raised
        out.write(json.dumps({"error": str(exc)}) + "\n")
        out.flush()
        return 2
    ready = {"ready": True, "bos_token_id": bos, "eos_token_id": eos, "vocab_size": tokenizer.get_vocab_size()}
    out.write(json.dumps(ready) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        texts = json.loads(line)["texts"]
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False) if texts else []
        out.write(json.dumps({"ids": [list(enc.ids) for enc in encodings]}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
