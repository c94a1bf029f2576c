"""What a request thread hands the engine worker (a Job) and what comes back on the job's queue (its events).

A job holds one HTTP request's engine work: prompts to score (echo with logprobs) and prompts to sample. The
worker answers with events in order: `PromptsScored` once (when there were prompts to score), `TokenDrawn` for
every token a sample draws (only to jobs with `per_token`: streamed, or with logprobs; the others learn the count
from `SampleFinished`), `SampleFinished` per sample, then `JobDone`; or `JobFailed` at any point, after which
nothing more comes. The queue carries lists of events: a decode step's events of the job come in one list (one put
per job per step, not per token), and the request thread handles everything waiting at once.
"""

from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import dataclass, field

from ..generation import PromptSamples
from .api_errors import ApiError
from .token_logprobs import TokenLogprob

_numbers = itertools.count()


@dataclass(frozen=True)
class PromptsScored:
    prompts: list[list[TokenLogprob]]  # per scored prompt, one entry per token (the first has no logprob)


@dataclass(frozen=True)
class TokenDrawn:
    key: str  # the PromptSamples key of the job
    sample_index: int
    token: TokenLogprob  # logprob None unless the job asked for logprobs


@dataclass(frozen=True)
class SampleFinished:
    key: str
    sample_index: int
    completion: str
    finish_reason: str  # the generate op's: stop, eos, length
    stop_sequence: str | None
    n_tokens: int = 0  # tokens drawn, the EOS included (what usage counts)


@dataclass(frozen=True)
class JobDone:
    pass


@dataclass(frozen=True)
class JobFailed:
    error: ApiError


JobEvent = PromptsScored | TokenDrawn | SampleFinished | JobDone | JobFailed


@dataclass
class Job:
    """One request's work. Jobs whose `group` is equal decode in one batch."""

    temperature: float
    top_p: float
    stop: tuple[str, ...]
    score: list[list[int]] = field(default_factory=list)  # prompts whose logprobs are wanted
    score_top_k: int = 0  # alternatives per scored position
    samples: list[PromptSamples] = field(default_factory=list)
    logprobs_k: int | None = None  # per drawn token: None, or its logprob and k alternatives
    number: int = field(default_factory=lambda: next(_numbers))
    events: queue.Queue[list[JobEvent]] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)  # the client went away
    failed: bool = False
    ignore_eos: bool = False  # EOS does not end a sample (vLLM's ignore_eos)
    per_token: bool = False  # wants a TokenDrawn per drawn token (streaming or logprobs)

    @property
    def rows(self) -> int:
        """Decode rows this job takes (its samples)."""
        return sum(len(p.indices) for p in self.samples)

    @property
    def group(self) -> tuple[float, float, tuple[str, ...], bool]:
        return (self.temperature, self.top_p, self.stop, self.ignore_eos)

    def fail(self, error: ApiError) -> None:
        if not self.failed:
            self.failed = True
            self.events.put([JobFailed(error)])
