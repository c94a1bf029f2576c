"""The contract between the protocol layer (server, scoring, generation) and a model implementation.

Two implementations exist: `hf_backend.HfBackend` (HF transformers, the parity reference and the fallback for
architectures we have not written) and the native StarCoder2 in `model.py` (our kernels, the fast path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class ModelFacts:
    """What the rest of the engine needs to know about a loaded model."""

    architecture: str
    vocab_size: int
    max_position_embeddings: int
    sliding_window: int | None
    bos_token_id: int | None
    eos_token_id: int | None
    n_params: int
    weight_bytes: int
    dtype: str
    device: str


class CausalLMBackend(Protocol):
    facts: ModelFacts
    # Whether `set_deterministic(True)` can make results batch-invariant (invariant.py); HF transformers cannot.
    can_be_deterministic: bool

    def set_deterministic(self, on: bool) -> None:
        """Batch-invariant mode on (a row's results independent of its batch) or off (the fast path)."""
        ...

    def target_logprobs(self, sequences: list[torch.Tensor]) -> list[torch.Tensor]:
        """For each 1-D int64 sequence x of length L, return the L-1 float32 values log p(x[t+1] | x[:t+1]).

        Sequences may differ in length; implementations pack them (no pad tokens computed) and must never
        materialise full-vocabulary float32 logits for all positions at once.
        """
        ...

    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        """Logits (float32, [len(sequences), vocab]) for the token after each sequence. Used by generation
        and by quality checks (KL against a reference)."""
        ...
