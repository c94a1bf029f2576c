"""A completion request's `prompt` as token ids: a string, a list of strings, a list of token ids, or a list of
lists of token ids (the four shapes OpenAI's legacy completions API and vLLM accept).

Strings are tokenized as the engine's generate and score ops tokenize (no special tokens unless the request asks
for them), so a string prompt and its /tokenize ids give the same completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer

from .api_errors import bad_value


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    text: str  # the string given, or the ids decoded (what `echo` returns)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_prompts(value: Any, tokenizer: Tokenizer, vocab_size: int, add_special_tokens: bool) -> list[Prompt]:
    if value is None:
        raise bad_value("prompt is required", "prompt", code=None)
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(_is_token(t) for t in value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    elif isinstance(value, list):
        raise bad_value("prompt is an empty list", "prompt")
    else:
        raise bad_value("prompt must be a string, a list of strings, or a list (of lists) of token ids", "prompt")
    several = len(items) > 1
    out: list[Prompt] = []
    for i, item in enumerate(items):
        name = f"prompt[{i}]" if several else "prompt"
        if isinstance(item, str):
            ids = list(tokenizer.encode(item, add_special_tokens=add_special_tokens).ids) if item else []
            text = item
        elif isinstance(item, list) and all(_is_token(t) for t in item):
            bad = next((t for t in item if not 0 <= t < vocab_size), None)
            if bad is not None:
                raise bad_value(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size})", "prompt")
            ids = list(item)
            text = tokenizer.decode(ids, skip_special_tokens=False)
        else:
            raise bad_value(
                f"{name} must be a string or a list of token ids (integers); a list mixes them or holds other values",
                "prompt",
            )
        if not ids:
            raise bad_value(f"{name} is empty: it has no tokens", "prompt")
        out.append(Prompt(ids, text))
    return out
