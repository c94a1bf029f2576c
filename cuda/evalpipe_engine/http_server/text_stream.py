"""A sample's text as its tokens arrive, in pieces that never change afterwards (what streaming sends).

Each new token is decoded together with the token or two before it, as vLLM's incremental detokenizer does, so
merges and a decoder's leading-space rule see their context, and text ending in an incomplete UTF-8 sequence waits
for the next token. The last `holdback` characters (the longest stop string less one) are held back too: a stop
string completed by a later token starts inside them, and the engine cuts the completion there, so text that was
sent is never cut. `finish` gives the rest of the engine's final completion.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tokenizers import Tokenizer

log = logging.getLogger("evalpipe_engine.http")


class TextStream:
    def __init__(self, tokenizer: Tokenizer, eos_ids: Iterable[int], stop: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._eos = set(eos_ids)
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self._tokens: list[int] = []
        self._prefix = 0  # tokens[prefix:read] decode to the end of `text`, the context of the next piece
        self._read = 0
        self._text = ""
        self._sent = 0  # characters of `text` given out

    def _decode(self, tokens: list[int]) -> str:
        return self._tokenizer.decode(tokens, skip_special_tokens=False)

    def add(self, token: int) -> str:
        """Take the next drawn token; return the text that became final ("" when none did)."""
        if token in self._eos:  # the engine stops there and never puts the EOS in the text
            return ""
        self._tokens.append(token)
        before = self._decode(self._tokens[self._prefix : self._read])
        after = self._decode(self._tokens[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._text += after[len(before) :]
            self._prefix, self._read = self._read, len(self._tokens)
        safe = len(self._text) - self._holdback
        if safe <= self._sent:
            return ""
        piece = self._text[self._sent : safe]
        self._sent = safe
        return piece

    def finish(self, completion: str) -> str:
        """The engine's final completion less what was already given out."""
        if not completion.startswith(self._text[: self._sent]):
            log.warning("streamed text diverged from the final completion (a tokenizer that is not prefix-stable)")
        return completion[self._sent :]
