"""The legacy completions `logprobs` object: {tokens, token_logprobs, top_logprobs, text_offset}, as vLLM fills it.

`tokens[i]` is token i decoded on its own (special tokens as their text), or `token_id:<id>` when the request set
`return_tokens_as_token_ids` (two tokens can decode to the same string, e.g. halves of one UTF-8 character).
`top_logprobs[i]` maps the chosen token and then the k most likely ones to their logprobs (the chosen one keeps
its own value when it is among them); it is null where `token_logprobs[i]` is null (a prompt's first token).
`text_offset[i]` is the sum of the lengths of tokens[0..i-1], from 0. Values below -9999 (and -inf) are -9999.0,
as vLLM writes them, so the JSON stays finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer

from .token_logprobs import TokenLogprob

FLOOR = -9999.0


class TokenNames:
    def __init__(self, tokenizer: Tokenizer, as_ids: bool) -> None:
        self._tokenizer = tokenizer
        self._as_ids = as_ids
        self._cache: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        if self._as_ids:
            return f"token_id:{token}"
        name = self._cache.get(token)
        if name is None:
            name = self._tokenizer.decode([token], skip_special_tokens=False)
            self._cache[token] = name
        return name


def _finite(value: float) -> float:
    return value if math.isfinite(value) and value > FLOOR else FLOOR


def legacy_logprobs(entries: Sequence[TokenLogprob], names: TokenNames, offset: int = 0) -> tuple[dict[str, Any], int]:
    """The object for these positions, their offsets counted from `offset`; also the offset after the last one
    (a stream continues from it)."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []
    for entry in entries:
        name = names(entry.token)
        tokens.append(name)
        text_offset.append(offset)
        offset += len(name)
        if entry.logprob is None:
            token_logprobs.append(None)
            top_logprobs.append(None)
            continue
        value = _finite(entry.logprob)
        token_logprobs.append(value)
        top = {name: value}
        for token, lp in entry.top:
            top.setdefault(names(token), _finite(lp))
        top_logprobs.append(top)
    out = {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": text_offset}
    return out, offset
