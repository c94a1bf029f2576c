"""The latency experiment for one cell {batch, ctx} on the loaded model (the `bench` op).

Protocol (the study's): `warmup` minibatches (default 2), then `repeats` (default 4) rounds of `iters` (default 4)
timed minibatches. A minibatch is `batch` rows of `ctx` random token ids, scored exactly as perplexity scoring
does (full prefill plus the chunked head's target log-probabilities). Each minibatch is timed on its own (CUDA
events on GPU, a monotonic clock on CPU); `seconds_per_minibatch` is the median of all timed minibatches.
`peak_gib` is torch's peak allocated GPU memory during the cell (GiB), null on CPU.

An out-of-memory cell returns status "oom" with the memory released; the engine carries on. Params are checked
against schemas/engine/bench.json first. The timed unit is the backend's `score_minibatch` (backend.py).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .backend import CausalLMBackend
from .errors import BadRequest
from .request_schemas import check_params

Emit = Callable[[str, dict[str, Any]], None]
BENCH_DEFAULTS: dict[str, int] = {"warmup": 2, "iters": 4, "repeats": 4, "seed": 0}


def _device_of(backend: CausalLMBackend) -> torch.device:
    return torch.device(backend.facts.device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def run_bench(backend: CausalLMBackend, params: Mapping[str, Any], emit: Emit | None = None) -> dict[str, Any]:
    """One latency cell. params: {batch, ctx, warmup?, iters?, repeats?, seed?}. Returns
    {status, batch, ctx, warmup, iters, repeats, seconds_per_minibatch, tokens_per_s, peak_gib, times}; `times` are
    the repeats*iters timed minibatches in seconds, in order (repeat r is times[r*iters:(r+1)*iters])."""
    check_params("bench", params)
    settings = {**BENCH_DEFAULTS, **params}
    batch, ctx = int(settings["batch"]), int(settings["ctx"])
    warmup, iters, repeats, seed = (int(settings[k]) for k in ("warmup", "iters", "repeats", "seed"))
    facts = backend.facts
    if ctx > facts.max_position_embeddings:
        raise BadRequest(
            f"bench: ctx {ctx} exceeds the model's maximum context of {facts.max_position_embeddings}",
            hint=f"use ctx <= {facts.max_position_embeddings}",
        )
    device = _device_of(backend)
    cuda = device.type == "cuda"
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    ids_cpu = torch.randint(0, facts.vocab_size, (batch, ctx), generator=gen, dtype=torch.int64)
    base: dict[str, Any] = {"batch": batch, "ctx": ctx, "warmup": warmup, "iters": iters, "repeats": repeats}

    _free(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    ids: torch.Tensor | None = None
    dev_ids: torch.Tensor | None = None
    oom = False
    times: list[list[float]] = []
    try:
        ids = ids_cpu.to(device)
        dev_ids = ids

        def step() -> object:
            return backend.score_minibatch(dev_ids)

        for _ in range(warmup):
            step()
        if cuda:
            torch.cuda.synchronize(device)
        total = repeats * iters
        for r in range(repeats):
            round_times: list[float] = []
            for _ in range(iters):
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    step()
                    end.record()
                    end.synchronize()
                    round_times.append(start.elapsed_time(end) / 1000.0)
                else:
                    t0 = time.perf_counter()
                    step()
                    round_times.append(time.perf_counter() - t0)
            times.append(round_times)
            if emit is not None:
                emit("progress", {"done": (r + 1) * iters, "total": total, "unit": "minibatches"})
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    except torch.OutOfMemoryError:
        oom = True
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    ids = dev_ids = None
    step = None  # type: ignore[assignment]
    # freed only here, outside the except block: the exception's traceback pins the frames holding activations
    _free(device)
    if oom:
        return {
            **base,
            "status": "oom",
            "seconds_per_minibatch": None,
            "tokens_per_s": None,
            "peak_gib": peak,
            "times": [],
        }
    spm = statistics.median(t for rt in times for t in rt)
    return {
        **base,
        "status": "ok",
        "seconds_per_minibatch": spm,
        "tokens_per_s": batch * ctx / spm,
        "peak_gib": peak,
        "times": [t for rt in times for t in rt],
    }
