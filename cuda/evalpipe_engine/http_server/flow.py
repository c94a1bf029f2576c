"""One request's choices: the engine job they need (with the context-length checks) and the job's events.

Choice c of a request with P prompts and n choices each is prompt c // n, sample c % n (vLLM's order). Prompt p's
samples are the generate op's samples of key `seed_keys[p]` (default: str(p)) with the request's seed, so sample i
of it draws from sample_seed(seed, key, i) exactly as the generate op's sample (key, i) does. Greedy decoding
(temperature 0) draws sample 0 once and gives it to all n choices: greedy has one answer.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..generation import PromptSamples
from .api_errors import SERVER_ERROR, ApiError
from .context import ServerContext
from .jobs import Job, JobDone, JobEvent, JobFailed, SampleFinished
from .prompts import Prompt
from .request_params import Sampling
from .text_stream import TextStream
from .token_logprobs import TokenLogprob

EVENT_POLL_S = 0.5


@dataclass
class Choice:
    index: int
    prompt: int
    key: str  # the job's PromptSamples key of its prompt
    sample: int  # the engine sample it shows
    budget: int  # max new tokens (0: echo only)
    stream: TextStream | None
    tokens: list[TokenLogprob] = field(default_factory=list)
    finished: SampleFinished | None = None


def context_budget(length: int, max_tokens: int | None, echo: bool, model_max: int, name: str) -> int:
    """The new tokens a prompt of `length` tokens may get, or a 400 saying by how much it does not fit."""
    if max_tokens is None:
        room = model_max - length
        if room >= 1 or (echo and room == 0):
            return room
        raise ApiError(
            400,
            f"This model's maximum context length is {model_max} tokens. However, {name} has {length} tokens, which "
            "leaves no room for a completion. Please reduce the length of the prompt.",
            param="prompt",
            code="context_length_exceeded",
        )
    if length + max_tokens > model_max:
        raise ApiError(
            400,
            f"This model's maximum context length is {model_max} tokens. However, you requested "
            f"{length + max_tokens} tokens ({length} in {name}, {max_tokens} in the completion). Please reduce the "
            "length of the prompt or max_tokens.",
            param="max_tokens" if length <= model_max else "prompt",
            code="context_length_exceeded",
        )
    return max_tokens


class Flow:
    def __init__(
        self,
        ctx: ServerContext,
        prompts: list[Prompt],
        sampling: Sampling,
        max_tokens: int | None,
        *,
        echo: bool = False,
        logprobs: int | None = None,
        seed_keys: list[str] | None = None,
        streaming: bool = False,
    ) -> None:
        self.ctx = ctx
        self.prompts = prompts
        self.sampling = sampling
        self.echo = echo
        self.logprobs = logprobs
        keys = seed_keys if seed_keys is not None else [str(p) for p in range(len(prompts))]
        model_max = ctx.max_model_len
        several = len(prompts) > 1
        budgets = [
            context_budget(len(p.ids), max_tokens, echo, model_max, f"prompt[{i}]" if several else "the prompt")
            for i, p in enumerate(prompts)
        ]
        self.job = Job(
            sampling.temperature,
            sampling.group[1],
            sampling.stop,
            logprobs_k=logprobs,
            ignore_eos=sampling.ignore_eos,
            per_token=streaming or logprobs is not None,
        )
        if echo and logprobs is not None:
            self.job.score = [p.ids for p in prompts]
            self.job.score_top_k = logprobs
        indices = [0] if sampling.greedy else list(range(sampling.n))
        for p, (prompt, budget) in enumerate(zip(prompts, budgets, strict=True)):
            if budget > 0:
                self.job.samples.append(
                    PromptSamples(str(p), prompt.ids, indices, budget, sampling.seed, seed_key=keys[p])
                )
        eos = () if sampling.ignore_eos else ctx.loaded.eos_token_ids
        tokenizer = ctx.loaded.tokenizer
        self.choices = [
            Choice(
                index=p * sampling.n + i,
                prompt=p,
                key=str(p),
                sample=0 if sampling.greedy else i,
                budget=budgets[p],
                stream=TextStream(tokenizer, eos, sampling.stop) if streaming else None,
            )
            for p in range(len(prompts))
            for i in range(sampling.n)
        ]
        self._by_sample: dict[tuple[str, int], list[Choice]] = {}
        for choice in self.choices:
            self._by_sample.setdefault((choice.key, choice.sample), []).append(choice)
        self.scored: list[list[TokenLogprob]] | None = None

    def showing(self, key: str, sample: int) -> list[Choice]:
        """The choices that show this engine sample (n of them for a greedy prompt, else one)."""
        return self._by_sample.get((key, sample), [])

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p.ids) for p in self.prompts)

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.tokens) if c.finished is None else c.finished.n_tokens for c in self.choices)

    def usage(self) -> dict[str, int]:
        prompt, completion = self.prompt_tokens, self.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def cancel(self) -> None:
        self.job.cancelled.set()

    def events(self) -> Iterator[list[JobEvent]]:
        """Submit the job and yield its events, in lists of everything that has arrived, up to its end; a failure
        raises its ApiError."""
        if not self.job.samples and not self.job.score:
            yield [JobDone()]  # echo of prompts without logprobs: nothing for the engine to do
            return
        self.ctx.worker.submit(self.job)
        events = self.job.events
        while True:
            try:
                batch = events.get(timeout=EVENT_POLL_S)
            except queue.Empty:
                if not self.ctx.worker.alive:
                    raise ApiError(503, "the engine worker has stopped", error_type=SERVER_ERROR) from None
                continue
            while True:  # everything else already waiting, handled at once
                try:
                    batch = batch + events.get_nowait()
                except queue.Empty:
                    break
            for at, event in enumerate(batch):
                if isinstance(event, JobFailed):
                    if at:
                        yield batch[:at]
                    raise event.error
            yield batch
            if isinstance(batch[-1], JobDone):
                return
