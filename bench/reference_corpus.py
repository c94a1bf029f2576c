"""The training corpus of bench/train_reference.py: every `.py` file under the running interpreter's library paths
(sysconfig's stdlib, platstdlib, purelib and platlib: the standard library and the installed packages), read as
UTF-8, deduplicated by content, split into train and held-out by the content's sha256, and the byte-level BPE
tokenizer trained on it.

The split depends on a file's bytes only: the same file is held out on every machine whatever its path.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from evalpipe_engine.presets import SPECIAL_TOKENS  # ids 0 and 1, as StarCoder2's tokenizer

LIBRARY_PATH_KEYS: tuple[str, ...] = ("stdlib", "platstdlib", "purelib", "platlib")
MAX_FILE_BYTES = 1 << 20  # larger .py files are generated tables, not code worth learning from
HELD_OUT_PER_MILLE = 20  # 2% of the files, by content hash


@dataclass(frozen=True)
class SourceFile:
    path: str  # as found (for the record only)
    sha256: str
    text: str

    @property
    def held_out(self) -> bool:
        return int(self.sha256[:8], 16) % 1000 < HELD_OUT_PER_MILLE


@dataclass(frozen=True)
class Corpus:
    roots: tuple[str, ...]
    train: tuple[SourceFile, ...]
    held_out: tuple[SourceFile, ...]
    skipped: dict[str, int]
    list_sha256: str  # sha256 over the sorted content hashes of every kept file, with its split

    def describe(self) -> dict[str, object]:
        def side(files: tuple[SourceFile, ...]) -> dict[str, int]:
            return {"files": len(files), "bytes": sum(len(f.text.encode()) for f in files)}

        return {
            "source": "the .py files under the running interpreter's sysconfig library paths "
            f"({', '.join(LIBRARY_PATH_KEYS)}), deduplicated by content",
            "roots": list(self.roots),
            "train": side(self.train),
            "held_out": side(self.held_out),
            "held_out_rule": f"int(sha256(content)[:8], 16) % 1000 < {HELD_OUT_PER_MILLE}",
            "skipped": dict(self.skipped),
            "file_list_sha256": self.list_sha256,
        }


def library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(sorted({os.path.realpath(paths[k]) for k in LIBRARY_PATH_KEYS if k in paths}))


def _py_files(roots: tuple[str, ...]) -> Iterator[Path]:
    seen: set[str] = set()
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                real = os.path.realpath(os.path.join(directory, name))
                if real not in seen:
                    seen.add(real)
                    yield Path(real)


def collect_corpus(max_bytes: int | None = None) -> Corpus:
    """Read the corpus. `max_bytes` keeps a deterministic sample: files in content-hash order until the training
    side holds that many bytes and the held-out side at least one file (every held-out file of that prefix of the
    order); past the limit, training files are skipped while the first held-out file is looked for."""
    roots = library_roots()
    skipped = {"not_utf8": 0, "empty": 0, "too_large": 0, "duplicate": 0, "unreadable": 0}
    by_hash: dict[str, SourceFile] = {}
    for path in _py_files(roots):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                skipped["too_large"] += 1
                continue
            raw = path.read_bytes()
        except OSError:
            skipped["unreadable"] += 1
            continue
        if not raw.strip():
            skipped["empty"] += 1
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped["not_utf8"] += 1
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if digest in by_hash:
            skipped["duplicate"] += 1
            continue
        by_hash[digest] = SourceFile(str(path), digest, text)
    ordered = [by_hash[h] for h in sorted(by_hash)]
    train: list[SourceFile] = []
    held: list[SourceFile] = []
    train_bytes = 0
    for f in ordered:
        if max_bytes is not None and train_bytes >= max_bytes and held:
            break
        if f.held_out:
            held.append(f)
        elif max_bytes is not None and train_bytes >= max_bytes:
            continue
        else:
            train.append(f)
            train_bytes += len(f.text.encode())
    listing = "".join(f"{f.sha256} {'held_out' if f.held_out else 'train'}\n" for f in (*train, *held))
    return Corpus(roots, tuple(train), tuple(held), skipped, hashlib.sha256(listing.encode()).hexdigest())


def build_tokenizer() -> Tokenizer:
    """Byte-level BPE for code: digits split one by one (no number merges), then GPT-2's byte-level regex, which
    keeps runs of spaces (indentation) together; the special tokens first (ids 0 and 1), then the 256 bytes."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(files: tuple[SourceFile, ...], vocab_size: int, max_bytes: int) -> Tokenizer:
    """Train the BPE merges on the first `max_bytes` of the training files (content-hash order: a fixed sample)."""
    tok = build_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample: list[str] = []
    used = 0
    for f in files:
        if used >= max_bytes:
            break
        sample.append(f.text)
        used += len(f.text.encode())
    tok.train_from_iterator(sample, trainer=trainer)
    return tok


def tokenizer_sha256(tok: Tokenizer) -> str:
    return hashlib.sha256(tok.to_str().encode()).hexdigest()
