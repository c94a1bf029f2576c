"""When a sample's stop string appears, without decoding its tail at every step.

A byte-level BPE tokenizer (StarCoder2, Qwen2, Llama 3, DeepSeek-Coder: decoder `ByteLevel`) decodes a token
sequence to the UTF-8 decoding of the concatenation of its tokens' bytes (an added token: its content). A stop string
(UTF-8) then appears in the decoded text exactly when its bytes appear in that byte stream. The stops' bytes make
one Aho-Corasick automaton (`_byte_automaton`): a sample's state is the longest suffix of its bytes that is a
prefix of some stop, and a stop appears when a byte leads to an accepting state, so the first token at which a stop
appears is found as a decode of the whole text would find it. Two evaluations of that one automaton: `advance`
walks one row's new token's bytes (the per-row host path), `stop_transitions` walks every token from every state
at once into a [states, vocab] table (the continuous loop's check on the device). The completion itself is still
the tokenizer's decode, cut at the first stop string.

Other tokenizers (SentencePiece's `Metaspace`, byte fallback): `ByteStopMatcher.build` returns None and the
generate loop decodes the last tokens of each row instead (generation.py), as before.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

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


@dataclass(frozen=True, eq=False)
class ByteStopMatcher:
    """The bytes of every token id, the stop strings' bytes and their automaton (delta [states, 256] int64: the
    next state of each state and byte; accept [states] bool: a stop ends there). A sample starts in state 0."""

    token_bytes: list[bytes]
    stops: tuple[bytes, ...]
    delta: np.ndarray
    accept: np.ndarray

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
        delta, accept = _byte_automaton(encoded)
        return ByteStopMatcher(table, encoded, delta, accept)

    def advance(self, state: int, token: int) -> tuple[bool, int]:
        """Whether a stop appears once `token` follows a sample in automaton state `state`, and the new state.
        Token ids without bytes (past the tokenizer's vocabulary: the model's padding) change nothing."""
        piece = self.token_bytes[token] if 0 <= token < len(self.token_bytes) else b""
        hit = False
        for byte in piece:
            state = int(self.delta[state, byte])
            hit = hit or bool(self.accept[state])
        return hit, state


# Transition tables already built: (id of a token-bytes table, stops, vocabulary size) -> (that table, transitions).
# The token-bytes tables live as long as their tokenizer (_TOKEN_BYTES); holding one here keeps its id valid.
_TRANSITIONS: OrderedDict[tuple[int, tuple[bytes, ...], int], tuple[list[bytes], np.ndarray]] = OrderedDict()
_TRANSITIONS_KEPT = 16


def stop_transitions(matcher: ByteStopMatcher, vocab_size: int) -> np.ndarray:
    """The matcher as a token-level automaton, so that a batch of rows checks its stops with one table lookup per
    row and step (on the device, generation's continuous loop): table[state, token] = 2 * next_state + hit, int32
    [states, vocab_size]. A row's state is the longest suffix of its generated bytes that is a prefix of some stop
    (state 0: none; a new sample starts there); hit is 1 when a stop appears in the bytes once `token` follows, the
    same answer and state as `advance` (a stop that appears ends inside the new token's bytes, since none had).
    Token ids past the tokenizer's vocabulary (the model's padding) have no bytes: the state stays, no hit."""
    key = (id(matcher.token_bytes), matcher.stops, vocab_size)
    kept = _TRANSITIONS.get(key)
    if kept is not None and kept[0] is matcher.token_bytes:
        _TRANSITIONS.move_to_end(key)
        return kept[1]
    table = _token_transitions((matcher.delta, matcher.accept), matcher.token_bytes, vocab_size)
    _TRANSITIONS[key] = (matcher.token_bytes, table)
    while len(_TRANSITIONS) > _TRANSITIONS_KEPT:
        _TRANSITIONS.popitem(last=False)
    return table


def _byte_automaton(stops: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Aho-Corasick over the stops' bytes as a full DFA: delta [states, 256] int64 (next state of each state and
    byte) and accept [states] bool (a stop ends at this state: it or a state on its suffix chain ends one)."""
    children: list[dict[int, int]] = [{}]
    ends = [False]
    for stop in stops:
        state = 0
        for byte in stop:
            if byte not in children[state]:
                children.append({})
                ends.append(False)
                children[state][byte] = len(children) - 1
            state = children[state][byte]
        ends[state] = True
    n = len(children)
    delta = np.zeros((n, 256), dtype=np.int64)
    accept = np.array(ends, dtype=bool)
    fail = [0] * n
    queue: deque[int] = deque()
    for byte, child in children[0].items():
        delta[0, byte] = child
        queue.append(child)
    while queue:  # breadth first: a state's fail link is shallower, so its row of delta is complete already
        state = queue.popleft()
        accept[state] |= accept[fail[state]]
        delta[state] = delta[fail[state]]
        for byte, child in children[state].items():
            fail[child] = int(delta[fail[state], byte])
            delta[state, byte] = child
            queue.append(child)
    return delta, accept


def _token_transitions(automaton: tuple[np.ndarray, np.ndarray], token_bytes: list[bytes], vocab: int) -> np.ndarray:
    """Every token's bytes run through the byte automaton from every state at once (numpy, one byte position at a
    time over the tokens at least that long)."""
    delta, accept = automaton
    states = delta.shape[0]
    pieces = token_bytes[:vocab]
    lengths = np.zeros(vocab, dtype=np.int64)
    lengths[: len(pieces)] = [len(p) for p in pieces]
    longest = int(lengths.max(initial=0))
    padded = np.zeros((vocab, max(1, longest)), dtype=np.uint8)
    for token, piece in enumerate(pieces):
        if piece:
            padded[token, : len(piece)] = np.frombuffer(piece, dtype=np.uint8)
    order = np.argsort(-lengths, kind="stable")  # longest first: the tokens with a byte at position k lead
    at_least = np.searchsorted(-lengths[order], -np.arange(1, longest + 1), side="right")
    state = np.repeat(np.arange(states, dtype=np.int64)[:, None], vocab, axis=1)
    hit = np.zeros((states, vocab), dtype=bool)
    for k in range(longest):
        cols = order[: at_least[k]]
        moved = delta[state[:, cols], padded[cols, k][None, :]]
        state[:, cols] = moved
        hit[:, cols] |= accept[moved]
    return (state * 2 + hit).astype(np.int32)
