"""tokenizer_config.json has one source (presets.py): the committed trained preset, the random presets and the
checkpoints bench/train_reference.py writes carry exactly what starcoder2_tokenizer_config (or, for the Llama
family, llama_family_tokenizer_config) gives for their max_length: the same special tokens, no BOS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalpipe_engine.presets import (
    MAX_POSITIONS,
    TINY_LLAMA,
    TINY_MISTRAL,
    TINY_QWEN2,
    TINY_STARCODER2,
    llama_family_tokenizer_config,
    starcoder2_tokenizer_config,
    tokenizer_config_text,
    write_preset_dir,
)
from evalpipe_engine.trained_presets import TRAINED_PRESETS, TRAINED_TINY_STARCODER2


def test_the_committed_trained_preset_has_the_starcoder2_tokenizer_config() -> None:
    checkpoint = TRAINED_PRESETS[TRAINED_TINY_STARCODER2]
    max_length = json.loads((checkpoint / "config.json").read_text())["max_position_embeddings"]
    written = (checkpoint / "tokenizer_config.json").read_text()
    assert written == tokenizer_config_text(starcoder2_tokenizer_config(max_length))
    assert json.loads(written)["add_bos_token"] is False and json.loads(written)["model_max_length"] == 1024


def test_the_random_starcoder2_preset_writes_the_same_function_at_its_length(tmp_path: Path) -> None:
    out = write_preset_dir(tmp_path, seed=0, name=TINY_STARCODER2)
    written = (out / "tokenizer_config.json").read_text()
    assert written == tokenizer_config_text(starcoder2_tokenizer_config(MAX_POSITIONS))
    config = json.loads(written)
    assert config["bos_token"] == config["eos_token"] == "<|endoftext|>"
    assert config["additional_special_tokens"] == ["<file_sep>"]


@pytest.mark.parametrize("name", [TINY_LLAMA, TINY_QWEN2, TINY_MISTRAL])
def test_each_llama_family_preset_writes_its_family_config(tmp_path: Path, name: str) -> None:
    out = write_preset_dir(tmp_path, seed=0, name=name)
    written = (out / "tokenizer_config.json").read_text()
    assert written == tokenizer_config_text(llama_family_tokenizer_config(name, MAX_POSITIONS))
    assert json.loads(written)["tokenizer_class"] == "PreTrainedTokenizerFast"
