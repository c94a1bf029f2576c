"""The one thread that owns the model. Request threads submit jobs; the worker batches what has arrived and runs it.

Batching: jobs wait in one FIFO queue. When a batch ends the worker takes the oldest waiting job, then the next
oldest ones in arrival order (those that arrived while the previous batch ran), then waits up to `batch_wait_s` for
more, as long as the batch's samples stay within `max_batch_rows` (a job with more samples than that goes alone); the
first job that does not fit stays first in the queue for the next batch, so no job is overtaken by a later one.
Of that batch it scores every prompt that wants prompt logprobs together (token_logprobs.prompt_logprobs, grouped
under the score op's token budget), then decodes the samples of all jobs with equal (temperature, top_p, stop) in
one `generation.decode_prompts` call, which puts up to `max_batch_rows` samples of consecutive prompts in one decode
batch (the generate op's batching). Budgets and seeds are per prompt, so requests with other max_tokens or seeds
still share a batch. Drawn tokens reach a job once per decode step (the `on_step` hook), in one list, and only jobs
that stream or want logprobs get them at all.

A failure fails the jobs of the call that failed (they shared its batch) and the worker goes on. `stop()` refuses
new jobs, fails waiting ones, and lets the running batch finish until a grace period ends; after that the next
decode step abandons it and its jobs fail with 503.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from ..errors import EngineError
from ..generation import PromptSamples, decode_prompts
from .api_errors import SERVER_ERROR, ApiError, from_engine_error
from .jobs import Job, JobDone, JobEvent, PromptsScored, SampleFinished, TokenDrawn
from .token_logprobs import TokenLogprob, prompt_logprobs, prompt_top_logprobs, top_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..loading import LoadedModel

log = logging.getLogger("evalpipe_engine.http")


class _Abandoned(Exception):
    """Raised from the token hook to abandon a decode when the server stops."""


def _shutting_down() -> ApiError:
    return ApiError(503, "the server is shutting down", error_type=SERVER_ERROR, code="shutting_down")


class EngineWorker:
    def __init__(self, loaded: LoadedModel, *, max_batch_rows: int, batch_wait_s: float) -> None:
        self._loaded = loaded
        self._max_batch_rows = max_batch_rows
        self._batch_wait_s = batch_wait_s
        self._waiting: deque[Job] = deque()  # FIFO: the oldest job first
        self._closing = threading.Event()
        self._abandon_at: float | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closing.is_set():
                raise _shutting_down()
            self._waiting.append(job)
            self._arrived.notify()

    def stop(self, grace_s: float) -> None:
        """Refuse new jobs; the running batch may finish within grace_s, then it is abandoned."""
        with self._lock:
            if self._closing.is_set():
                return
            self._closing.set()
            self._abandon_at = time.monotonic() + grace_s
            self._arrived.notify()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # -- the loop --------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self.next_batch(self._batch_wait_s)
            if not batch:  # closing
                break
            if self._closing.is_set():
                for job in batch:
                    job.fail(_shutting_down())
                break
            try:
                self._run_batch(batch)
            except BaseException as exc:  # a bug in the worker itself: fail the batch, keep serving
                traceback.print_exc()
                for job in batch:
                    job.fail(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", error_type=SERVER_ERROR))
        with self._lock:  # fail whatever is still waiting
            left = list(self._waiting)
            self._waiting.clear()
        for job in left:
            job.fail(_shutting_down())

    def next_batch(self, wait_s: float) -> list[Job]:
        """The next batch: the oldest waiting job (waiting for one), then the following ones in arrival order while
        their samples fit in max_batch_rows, waiting up to wait_s for more; [] once stopping. Cancelled jobs are
        dropped on the way."""
        batch: list[Job] = []
        rows = 0
        deadline: float | None = None
        with self._arrived:
            while True:
                if self._closing.is_set():
                    return batch
                while self._waiting:
                    job = self._waiting[0]
                    if job.cancelled.is_set():
                        self._waiting.popleft()
                        continue
                    if batch and rows + job.rows > self._max_batch_rows:
                        return batch  # it stays first in line for the next batch
                    self._waiting.popleft()
                    batch.append(job)
                    rows += job.rows
                if batch and rows >= self._max_batch_rows:
                    return batch
                if not batch:
                    self._arrived.wait()
                    continue
                if deadline is None:
                    deadline = time.monotonic() + wait_s
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return batch
                self._arrived.wait(remaining)

    def _run_batch(self, batch: list[Job]) -> None:
        jobs = [job for job in batch if not job.cancelled.is_set()]
        log.debug(
            "batch of %d request(s): %d prompt(s) to score, %d to sample",
            len(jobs),
            sum(len(job.score) for job in jobs),
            sum(len(job.samples) for job in jobs),
        )
        scoring = [job for job in jobs if job.score]
        if scoring:
            self._guarded(scoring, lambda: self._score(scoring))
        groups: dict[tuple[float, float, tuple[str, ...]], list[Job]] = {}
        for job in jobs:
            if job.samples and not job.failed:
                groups.setdefault(job.group, []).append(job)
        for members in groups.values():
            self._guarded(members, lambda members=members: self._generate(members))
        for job in jobs:
            if not job.failed:
                job.events.put([JobDone()])

    def _guarded(self, jobs: list[Job], work: Callable[[], None]) -> None:
        try:
            work()
        except _Abandoned:
            for job in jobs:
                job.fail(_shutting_down())
        except EngineError as exc:
            for job in jobs:
                job.fail(from_engine_error(exc))
        except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            for job in jobs:
                job.fail(
                    ApiError(
                        503,
                        f"out of memory ({type(exc).__name__}) on a batch of {len(jobs)} request(s): retry, or "
                        "start the server with a smaller --max-batch-rows",
                        error_type=SERVER_ERROR,
                        code="out_of_memory",
                    )
                )
        except Exception as exc:
            traceback.print_exc()
            for job in jobs:
                job.fail(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", error_type=SERVER_ERROR))

    # -- the engine calls ------------------------------------------------------------------------------------------
    def _score(self, jobs: list[Job]) -> None:
        sequences = [ids for job in jobs for ids in job.score]
        values = prompt_logprobs(self._loaded, sequences)
        wants_top = [job.score_top_k > 0 for job in jobs for _ in job.score]
        k = max((job.score_top_k for job in jobs), default=0)
        tops: list[list[tuple[tuple[int, float], ...]]] = [[] for _ in sequences]
        if k > 0:
            picked = [i for i, want in enumerate(wants_top) if want]
            found = prompt_top_logprobs(self._loaded, [sequences[i] for i in picked], k, self._max_batch_rows)
            for i, top in zip(picked, found, strict=True):
                tops[i] = top
        at = 0
        for job in jobs:
            scored: list[list[TokenLogprob]] = []
            for ids in job.score:
                lps, top = values[at], tops[at]
                entries = [TokenLogprob(ids[0], None)]
                for t in range(1, len(ids)):
                    entries.append(TokenLogprob(ids[t], lps[t - 1], top[t - 1][: job.score_top_k] if top else ()))
                scored.append(entries)
                at += 1
            job.events.put([PromptsScored(scored)])

    def _generate(self, jobs: list[Job]) -> None:
        owners: dict[str, tuple[Job, str]] = {}
        prompts: list[PromptSamples] = []
        for job in jobs:
            for p in job.samples:
                key = f"{job.number}/{p.key}"  # unique across the merged jobs; seeds still from the job's own key
                owners[key] = (job, p.key)
                prompts.append(replace(p, key=key, seed_key=p.key if p.seed_key is None else p.seed_key))

        pending: dict[int, tuple[Job, list[JobEvent]]] = {}  # this step's events per job
        per_token = any(job.per_token for job in jobs)

        def flush() -> None:
            for job, events in pending.values():
                job.events.put(events)
            pending.clear()

        def on_step() -> None:
            if pending:
                flush()
            if self._abandon_at is not None and time.monotonic() > self._abandon_at:
                raise _Abandoned

        def on_token(key: str, sample_index: int, token: int, logits: torch.Tensor) -> None:
            job, own = owners[key]
            if not job.per_token:
                return
            k = job.logprobs_k
            drawn = TokenLogprob(token, None) if k is None else top_of(logits, token, k)
            held = pending.get(job.number)
            if held is None:
                pending[job.number] = (job, [TokenDrawn(own, sample_index, drawn)])
            else:
                held[1].append(TokenDrawn(own, sample_index, drawn))

        def emit(event: str, data: dict[str, Any]) -> None:
            if event != "partial":
                return
            job, own = owners[data["key"]]
            drawn = int(data["n_new_tokens"]) + (1 if data["finish_reason"] == "eos" else 0)
            finished = SampleFinished(
                own, data["sample_index"], data["completion"], data["finish_reason"], data["stop_sequence"], drawn
            )
            held = pending.get(job.number)  # after the sample's last token, in the same list
            if held is None:
                pending[job.number] = (job, [finished])
            else:
                held[1].append(finished)

        first = jobs[0]
        decode_prompts(
            self._loaded,
            prompts,
            temperature=first.temperature,
            top_p=first.top_p,
            stop=first.stop,
            max_batch_rows=self._max_batch_rows,
            emit=emit,
            on_token=on_token if per_token else None,
            ignore_eos=first.ignore_eos,
            on_step=on_step,
        )
        flush()
