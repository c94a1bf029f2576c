"""The contract between the protocol layer (server, scoring, generation, bench) and a model implementation.

Two implementations exist: `hf_backend.HfBackend` (HF transformers, the parity reference and the fallback for
architectures we have not written) and the native StarCoder2 in `model.py` (our kernels, the fast path). Each
implements every member below; what one cannot do it says through a capability attribute (`can_be_deterministic`,
`batches_prompts`, a decoder's `can_drop_rows`), never by lacking a method, so the engine asks and never probes.
cuda/tests/test_backend_contract.py checks both against these protocols.

What the engine calls, and where:

| member | called by | for |
|---|---|---|
| `facts` | everything | vocabulary, positions, BOS/EOS, device |
| `can_be_deterministic`, `set_deterministic` | loading.load_model | the batch-invariant mode (invariant.py) |
| `set_fast_paths` | loading.load_model | the fast-path switches (fast_paths.py) |
| `target_logprobs` | scoring.score | perplexity windows |
| `next_token_logits` | generation.RecomputeDecoder, quality.py | logits after a whole sequence |
| `open_decoder` | generation (one prompt at a time) | n samples of one prompt |
| `batches_prompts`, `open_batch_decoder` | generation | samples of several prompts in one batch |
| `admits_rows`, `decode_rows_for` | generation (continuous) | rows admitted into a running batch; how many fit |
| `score_minibatch` | bench.run_bench | the timed latency unit |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from .fast_paths import FastPaths


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


@runtime_checkable
class Decoder(Protocol):
    """Incremental decoding of a batch of samples (rows): what `open_decoder` and `open_batch_decoder` return.

    dec = backend.open_decoder(prompt, n=3, capacity=len(prompt) + 64)
    dec.first_logits          # [3, vocab] float32: the logits after the prompt, one row per sample
    dec.step(tokens)          # tokens [3] int64, one per row -> the next logits [3, vocab] float32
    dec.keep([0, 2])          # rows 0 and 2 go on (in that order) as rows 0 and 1; the next step takes 2 tokens
    """

    first_logits: torch.Tensor
    # Whether keep() drops rows. A decoder that cannot shrink its batch says False: finished rows then stay in it,
    # fed a placeholder token, and their logits are ignored (generation.py).
    can_drop_rows: bool

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per live row ([rows] int64); return the next logits ([rows, vocab] float32)."""
        ...

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, in this order (finished samples leave). Only called when `can_drop_rows`."""
        ...


@runtime_checkable
class CausalLMBackend(Protocol):
    """A causal language model the engine can score, sample and time (the table in the module docstring)."""

    facts: ModelFacts
    # Whether `set_deterministic(True)` can make results batch-invariant (invariant.py); HF transformers cannot.
    can_be_deterministic: bool
    # Whether `open_batch_decoder` works (prompts prefilled together, their samples decoded as one batch). When
    # False it raises Unsupported and generation opens one decoder per prompt instead.
    batches_prompts: bool
    # Whether its batch decoder takes samples into a running batch (`slots` at open, then `admit(prompts, counts)`,
    # `retire(rows)`, `free_rows`, `hold_bucket`, and `live`, the mask of the rows holding a sample): continuous
    # batching in generation. HF transformers: False.
    admits_rows: bool

    def set_deterministic(self, on: bool) -> None:
        """Batch-invariant mode on (a row's results independent of its batch) or off (the fast path). Only called
        with True when `can_be_deterministic`."""
        ...

    def set_fast_paths(self, fast_paths: FastPaths) -> None:
        """Take the fast paths these switches allow from now on (a backend ignores the ones it does not have)."""
        ...

    def target_logprobs(self, sequences: list[torch.Tensor], *, run_last: bool = True) -> list[torch.Tensor]:
        """For each 1-D int64 sequence x of length L, return the L-1 float32 values log p(x[t+1] | x[:t+1]).

        Sequences may differ in length; implementations pack them (no pad tokens computed) and must never
        materialise full-vocabulary float32 logits for all positions at once. With `run_last=False` the model
        runs on x[:-1] only (the last id is a target, never an input: the same values, and a window of
        max_length inputs plus its next token fits a model of max_length positions; the lm-eval windowing).
        """
        ...

    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        """Logits (float32, [len(sequences), vocab]) for the token after each sequence. Used by generation
        and by quality checks (KL against a reference)."""
        ...

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Decoder:
        """A decoder of n samples that share one prompt (1-D int64). `capacity` is the most positions (prompt
        included) the caller will reach, for backends that size a cache once; None: the backend's default. A
        backend whose cache grows as needed ignores it."""
        ...

    def open_batch_decoder(
        self, prompts: list[torch.Tensor], counts: list[int], capacity: int | None = None, *, slots: int | None = None
    ) -> Decoder:
        """One decoder for counts[i] samples of prompts[i] for every i (rows in that order); `capacity` as for
        open_decoder, for the longest prompt; `slots` rows allocated in all when `admits_rows` (room to admit).
        Raises Unsupported when not `batches_prompts`."""
        ...

    def decode_rows_for(self, capacity: int, cap: int) -> int:
        """When `admits_rows`: the most rows (at most `cap`) a continuous batch of `capacity` positions per row
        may have on this device (the engine's default batch when the request gives none)."""
        ...

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        """The latency unit: ids [B, T] int64 on the backend's device -> float32 [B*(T-1)] target log-probs, left
        on the device: the work `target_logprobs` does for B rows of T tokens, without its host copies."""
        ...
