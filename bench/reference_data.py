"""Token streams for bench/train_reference.py: each file as `<|endoftext|>` + its tokens, files concatenated in
content-hash order into one uint16 array per split; random training windows drawn from it by a seeded generator;
held-out windows laid end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from reference_corpus import SourceFile
from tokenizers import Tokenizer

from evalpipe_engine.presets import EOS_TOKEN

_ENCODE_CHUNK = 1024  # files per encode_batch call


def encode_files(tok: Tokenizer, files: tuple[SourceFile, ...]) -> np.ndarray:
    eos = tok.token_to_id(EOS_TOKEN)
    if eos is None or tok.get_vocab_size() > 1 << 16:
        raise ValueError("the tokenizer needs <|endoftext|> and at most 65536 entries (uint16 token streams)")
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    parts: list[np.ndarray] = []
    for start in range(0, len(files), _ENCODE_CHUNK):
        texts = [f.text for f in files[start : start + _ENCODE_CHUNK]]
        for enc in encode(texts, add_special_tokens=False):
            parts.append(np.asarray([eos, *enc.ids], dtype=np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def cached_streams(
    tok: Tokenizer, train: tuple[SourceFile, ...], held: tuple[SourceFile, ...], key: str, cache: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """The two token streams, read from `cache` when it holds them for this corpus and tokenizer (`key`)."""
    name = f"tokens-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if cache is not None and (cache / name).is_file():
        with np.load(cache / name) as z:
            return z["train"], z["held_out"]
    train_ids, held_ids = encode_files(tok, train), encode_files(tok, held)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / (name + ".incomplete.npz")
        np.savez(tmp, train=train_ids, held_out=held_ids)
        tmp.replace(cache / name)
    return train_ids, held_ids


class WindowSampler:
    """Training batches [batch, context + 1] of windows at uniformly random offsets (a seeded CPU generator, so
    the same seed gives the same windows on any device); the stream lives on the training device."""

    def __init__(self, stream: np.ndarray, context: int, batch: int, seed: int, device: torch.device) -> None:
        if stream.size < context + 2:
            raise ValueError(f"the training stream has {stream.size} tokens, fewer than one window of {context + 1}")
        self.tokens = torch.from_numpy(stream.astype(np.int64)).to(device)
        self.context, self.batch = context, batch
        self.generator = torch.Generator().manual_seed(seed)
        self.span = torch.arange(context + 1, device=device)

    def next(self) -> torch.Tensor:
        starts = torch.randint(0, self.tokens.numel() - self.context - 1, (self.batch,), generator=self.generator)
        return self.tokens[starts.to(self.tokens.device)[:, None] + self.span]


def held_out_windows(stream: np.ndarray, context: int, max_tokens: int) -> torch.Tensor:
    """Consecutive windows [n, context + 1] over the held-out stream (each window's first token is context only),
    as many as fit in `max_tokens` scored tokens; one shorter window when the stream holds less than one."""
    ids = torch.from_numpy(stream.astype(np.int64))
    if stream.size < 2:
        raise ValueError(f"the held-out stream has {stream.size} tokens: nothing to score")
    if stream.size < context + 1:  # a sample smaller than one window: score it whole
        return ids[None]
    n = min((stream.size - 1) // context, max(1, max_tokens // context))
    return torch.stack([ids[i * context : i * context + context + 1] for i in range(n)])
