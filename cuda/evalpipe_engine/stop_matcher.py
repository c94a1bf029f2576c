"""When a sample's stop string appears, without decoding its tail at every step.

A byte-level BPE tokenizer (StarCoder2, Qwen2, Llama 3, DeepSeek-Coder: decoder `ByteLevel`) decodes a token
sequence to the UTF-8 decoding of the concatenation of its tokens' bytes (an added token: its content). A stop string
(UTF-8) then appears in the decoded text exactly when its bytes appear in that byte stream, so each sample keeps the
last (longest stop - 1) bytes and a new token is checked against those bytes plus its own: one bytes concatenation
and a substring search per row and step, and the first token at which a stop appears is found, as a decode of the
whole text would find it. The completion itself is still the tokenizer's decode, cut at the first stop string.

Other tokenizers (SentencePiece's `Metaspace`, byte fallback): `ByteStopMatcher.build` returns None and the
generate loop decodes the last tokens of each row instead (generation.py), as before.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

# Each tokenizer's table of token bytes (None: not a plain byte-level vocabulary), built once: every generate
# request and HTTP batch builds a matcher, and the table walks the whole vocabulary.
_TOKEN_BYTES: weakref.WeakKeyDictionary[Any, list[bytes] | None] = weakref.WeakKeyDictionary()


def _token_bytes(tokenizer: Any) -> list[bytes] | None:
    """The bytes of every token id of a byte-level tokenizer (an added token: its content), or None when an entry
    lies outside the byte alphabet."""
    alphabet = _byte_level_alphabet()
    added = {int(i): tok.content for i, tok in tokenizer.get_added_tokens_decoder().items()}
    table: list[bytes] = []
    for token_id in range(tokenizer.get_vocab_size()):
        if token_id in added:
            table.append(added[token_id].encode("utf-8"))
            continue
        piece = tokenizer.id_to_token(token_id)
        if piece is None:
            table.append(b"")
            continue
        try:
            table.append(bytes(alphabet[c] for c in piece))
        except KeyError:
            return None
    return table


def _byte_level_alphabet() -> dict[str, int]:
    """The ByteLevel pre-tokenizer's character for each byte, inverted: character -> byte. Printable Latin-1 bytes
    stand for themselves, the other 68 bytes for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


@dataclass(frozen=True)
class ByteStopMatcher:
    """The bytes of every token id and of every stop string."""

    token_bytes: list[bytes]
    stops: tuple[bytes, ...]
    keep: int  # bytes of tail a sample keeps: the longest stop's length - 1

    @staticmethod
    def build(tokenizer: Any, stops: tuple[str, ...]) -> ByteStopMatcher | None:
        """The matcher of a byte-level tokenizer (`tokenizers.Tokenizer`), or None where its decoding is not the
        concatenation of per-token bytes."""
        if not stops or type(getattr(tokenizer, "decoder", None)).__name__ != "ByteLevel":
            return None
        if tokenizer not in _TOKEN_BYTES:
            _TOKEN_BYTES[tokenizer] = _token_bytes(tokenizer)
        table = _TOKEN_BYTES[tokenizer]
        if table is None:
            return None
        encoded = tuple(s.encode("utf-8") for s in stops)
        return ByteStopMatcher(table, encoded, max(len(s) for s in encoded) - 1)

    def advance(self, tail: bytes, token: int) -> tuple[bool, bytes]:
        """Whether a stop appears once `token` follows the sample's kept `tail`, and the new tail."""
        piece = self.token_bytes[token] if 0 <= token < len(self.token_bytes) else b""
        window = tail + piece
        hit = any(s in window for s in self.stops)
        return hit, window[len(window) - self.keep :] if self.keep else b""
