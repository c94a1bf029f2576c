"""What one sample is while it decodes and what ends it, shared by generation's static groups and the continuous
loop (continuous.py): the sample and unit records, the request's token rules (EOS, stop strings, budget), the
per-token check, the finished sample's completion (decoded, cut at the first stop) and its `partial` event, and the
benchmarks' device clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .stop_matcher import ByteStopMatcher

Emit = Callable[[str, dict[str, Any]], None]
# on_token(key, sample_index, token, logits): a token a sample drew (an EOS too), with the float32 logits row
# ([vocab]) it was drawn from, before the sample's stop checks. It may raise to abandon the whole call.
TokenHook = Callable[[str, int, int, torch.Tensor], None]
# on_step(): called once per decode step after the step's on_token calls (and partials), before the next forward
# pass; the HTTP server hands each request its step's tokens at once. It may raise to abandon the whole call.
StepHook = Callable[[], None]
_Out = TypeVar("_Out")


@dataclass
class Sample:
    index: int
    seed: int  # sample_seed(...): the counter-based sampler's key (sampling.py); unused when greedy
    tokens: list[int]
    stop_state: int = 0  # the byte-level stop check's automaton state (stop_matcher.py)
    done: bool = False
    finish_reason: str = ""
    stop_sequence: str | None = None
    completion: str = ""


def find_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for s in stops:
        at = text.find(s)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, s)
    return best


class HostClock:
    """What the loop's device spends on its work (benchmarks): each model step, admission prefill and token choice
    is bracketed by CUDA events (on CPU: the host clock), and `busy_s()` sums them once the work is done; the rest of
    the loop's wall time is host code and the small copies between (1 - busy / wall: the host share). Each call's
    host time (until the work is queued) is kept beside it: a call whose device span is its host time kept the
    device waiting for the host. The generate op runs without one."""

    def __init__(self) -> None:
        self.steps = 0
        self._spans: list[tuple[str, Any, Any, float]] = []  # name, start and end events, host seconds
        self._host: list[tuple[str, float]] = []  # off CUDA: name, seconds

    def timed(
        self, device: torch.device, work: Callable[..., _Out], *args: Any, a_step: bool = False, **kw: Any
    ) -> _Out:
        """work(*args, **kw), timed; `a_step`: it is a decode step (counted)."""
        self.steps += int(a_step)
        name = getattr(work, "__name__", "work")
        if device.type != "cuda":
            t0 = time.perf_counter()
            out = work(*args, **kw)
            self._host.append((name, time.perf_counter() - t0))
            return out
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        t0 = time.perf_counter()
        out = work(*args, **kw)
        host_s = time.perf_counter() - t0
        end.record()
        self._spans.append((name, start, end, host_s))
        return out

    def _calls(self) -> list[tuple[str, float, float]]:
        """(name, device seconds, host seconds) of every timed call, once the work is done."""
        if self._spans:
            self._spans[-1][2].synchronize()
        calls = [(name, a.elapsed_time(b) / 1000.0, host_s) for name, a, b, host_s in self._spans]
        return calls + [(name, s, s) for name, s in self._host]

    def busy_by_work(self) -> dict[str, float]:
        """Seconds of device time per kind of work (the timed function's name: step, admit, choose_tokens, ...)."""
        out: dict[str, float] = {}
        for name, device_s, _ in self._calls():
            out[name] = out.get(name, 0.0) + device_s
        return out

    def calls_by_work(self) -> dict[str, dict[str, float]]:
        """Per kind of work: how many calls, their device time's median and largest (ms), and their host time
        (until queued) in all (s)."""
        grouped: dict[str, list[tuple[float, float]]] = {}
        for name, device_s, host_s in self._calls():
            grouped.setdefault(name, []).append((device_s, host_s))
        out: dict[str, dict[str, float]] = {}
        for name, calls in grouped.items():
            device = sorted(d for d, _ in calls)
            out[name] = {
                "calls": len(calls),
                "device_ms_median": 1e3 * device[len(device) // 2],
                "device_ms_max": 1e3 * device[-1],
                "host_s": sum(h for _, h in calls),
            }
        return out

    def busy_s(self) -> float:
        return sum(self.busy_by_work().values())


class NoClock(HostClock):
    """The generate op's: the work, untimed."""

    def timed(
        self, device: torch.device, work: Callable[..., _Out], *args: Any, a_step: bool = False, **kw: Any
    ) -> _Out:
        return work(*args, **kw)


@dataclass
class Unit:
    """The samples of one prompt that go through one decoder together (a prompt's samples may span decoders)."""

    key: str
    prompt: torch.Tensor
    budget: int
    samples: list[Sample]


@dataclass(frozen=True)
class TokenRules:
    """How a drawn token is chosen and what ends a sample (the request's settings)."""

    temperature: float
    top_p: float
    tokenizer: Any
    eos_ids: set[int]
    stops: tuple[str, ...]
    tail_tokens: int
    deterministic: bool
    matcher: ByteStopMatcher | None  # None: the tokenizer is not byte-level, the last tokens are decoded instead
    clock: HostClock


def take_token(
    unit: Unit,
    s: Sample,
    token: int,
    logits_row: torch.Tensor,
    rules: TokenRules,
    emit: Emit,
    on_token: TokenHook | None,
) -> bool:
    """Give sample `s` its drawn token; True when that finished it (then its partial is emitted)."""
    if on_token is not None:
        on_token(unit.key, s.index, token, logits_row)
    if token in rules.eos_ids:
        s.done, s.finish_reason = True, "eos"
    else:
        s.tokens.append(token)
        if rules.matcher is not None:
            hit, s.stop_state = rules.matcher.advance(s.stop_state, token)
            if hit:
                s.done, s.finish_reason = True, "stop"
        elif rules.stops:
            tail = rules.tokenizer.decode(s.tokens[-rules.tail_tokens :], skip_special_tokens=False)
            if find_stop(tail, rules.stops) is not None:
                s.done, s.finish_reason = True, "stop"
        if not s.done and len(s.tokens) >= unit.budget:
            s.done, s.finish_reason = True, "length"
    if s.done:
        finish_sample(s, rules.tokenizer, rules.stops)
        emit("partial", partial_event(unit.key, s, len(unit.prompt)))
    return s.done


def finish_sample(s: Sample, tokenizer: Any, stops: tuple[str, ...]) -> None:
    text = tokenizer.decode(s.tokens, skip_special_tokens=False)
    hit = find_stop(text, stops) if stops else None
    if hit is not None:
        text = text[: hit[0]]
        s.finish_reason, s.stop_sequence = "stop", hit[1]
    s.completion = text


def partial_event(key: str, s: Sample, n_prompt: int) -> dict[str, Any]:
    return {
        "key": key,
        "sample_index": s.index,
        "completion": s.completion,
        "finish_reason": s.finish_reason,
        "stop_sequence": s.stop_sequence,
        "n_new_tokens": len(s.tokens),
        "n_prompt_tokens": n_prompt,
    }
