"""Continuous batching for the generate loop: one decoder of `max_rows` rows for the whole request, samples admitted
into the rows that finished samples leave, every row's end decided on the device.

- Rows are slots. A finished sample's row is retired (decoding.StaticDecoder.retire: a hole, no cache moves) and the
  next prompts' samples are prefilled into the holes once an eighth of the rows is free (or none is live), so the
  batch stays full until the queue is empty. Then, each time the live rows are at most half of the rows stepped,
  they are compacted to the front (`keep`, a gather) so that the step's batch shrinks with the tail.
- Each slot's sampler key, draw index, token budget and stop state live on the device (`SlotBook`): a step's tokens
  are picked there, and so are the finish codes (0 going, 1 EOS, 2 stop string, 3 budget): EOS from a table of the
  EOS ids, the stop strings from stop_matcher.stop_transitions (the byte-level stop check as a token automaton: one
  lookup per row), the budget from the draw index. One pinned copy per step brings [tokens; codes] to the host, where
  numpy appends the tokens of the live rows to a per-slot buffer; Python runs only for the samples that finished.
- The per-row host path (`take_token`) remains where it is needed: an on_token hook (the HTTP server's logprobs and
  streaming), or stop strings with a tokenizer that is not byte-level (its last tokens are decoded).
- With `overlap` (default: on CUDA without an on_token hook) the next step is launched with the picked tokens before
  they reach the host, so the host's work runs while the GPU computes: a finished sample takes one step more, whose
  token is ignored.

A sample's tokens depend only on its logits, its seed and its draw index, and the finish rules are the per-row
path's (EOS is not appended; a stop before the budget): with --deterministic (batch-invariant kernels) the same
bits as any other batching, overlapped or not.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .sample_rules import Emit, Sample, StepHook, TokenHook, TokenRules, Unit, finish_sample, partial_event, take_token
from .sampling import choose_tokens
from .stop_matcher import stop_transitions
from .transfers import to_device

if TYPE_CHECKING:
    from .backend import CausalLMBackend

GOING, EOS, STOP, LENGTH = 0, 1, 2, 3
_REASONS = {EOS: "eos", STOP: "stop", LENGTH: "length"}


def admission_parts(units: list[Unit], max_rows: int) -> list[Unit]:
    """The units as the continuous batch admits them: a prompt's samples together, cut into parts of at most
    max_rows samples (the batch's size)."""
    parts: list[Unit] = []
    for unit in units:
        for i in range(0, len(unit.samples), max_rows):
            parts.append(Unit(unit.key, unit.prompt, unit.budget, unit.samples[i : i + max_rows]))
    return parts


class SlotBook:
    """What each decoder row (slot) holds: its unit and sample, on the host the tokens it has drawn, on the device its
    sampler key, draw index, budget and stop state. `device_checks`: the finish codes are computed on the device
    (`finish_codes`); otherwise the per-row path decides and the book only keeps the slots."""

    def __init__(self, device: torch.device, slots: int, rules: TokenRules, vocab: int, device_checks: bool) -> None:
        self._device = device
        self._vocab = vocab
        self.pairs: list[tuple[Unit, Sample] | None] = [None] * slots
        self.count = np.zeros(slots, dtype=np.int64)  # tokens appended (device_checks)
        self._buffer = np.zeros((slots, 1), dtype=np.int64)
        self.device_checks = device_checks
        with torch.inference_mode():
            self.seeds = torch.zeros(slots, dtype=torch.int64, device=device)
            self.draws = torch.zeros(slots, dtype=torch.int64, device=device)
            self._budget = torch.zeros(slots, dtype=torch.int64, device=device)
            self._state = torch.zeros(slots, dtype=torch.int64, device=device)
            self._eos: torch.Tensor | None = None
            self._stop: torch.Tensor | None = None
            if device_checks:
                eos = [t for t in rules.eos_ids if 0 <= t < vocab]
                if eos:
                    table = torch.zeros(vocab, dtype=torch.bool)
                    table[eos] = True
                    self._eos = table.to(device)
                if rules.matcher is not None:
                    transitions = stop_transitions(rules.matcher, vocab)
                    self._stop = torch.from_numpy(transitions.reshape(-1)).to(device)  # int32

    # ------------------------------------------------------------------------------------------------ slots

    def fill(self, slots: list[int], pairs: list[tuple[Unit, Sample]]) -> None:
        """New samples in these slots: draw 0, stop state 0, their budgets."""
        for slot, pair in zip(slots, pairs, strict=True):
            self.pairs[slot] = pair
        self.count[np.asarray(slots, dtype=np.int64)] = 0
        widest = max(unit.budget for unit, _ in pairs)
        if self.device_checks and widest > self._buffer.shape[1]:
            grown = np.zeros((self._buffer.shape[0], widest), dtype=np.int64)
            grown[:, : self._buffer.shape[1]] = self._buffer
            self._buffer = grown
        with torch.inference_mode():
            at = to_device(slots, self._device)
            self.seeds.index_copy_(0, at, to_device([s.seed for _, s in pairs], self._device))
            self.draws.index_fill_(0, at, 0)
            self._budget.index_copy_(0, at, to_device([u.budget for u, _ in pairs], self._device))
            self._state.index_fill_(0, at, 0)

    def free(self, slots: list[int]) -> None:
        for slot in slots:
            self.pairs[slot] = None

    def keep(self, slots: list[int]) -> None:
        """The decoder compacted these slots to the front, in this order."""
        m = len(slots)
        index = np.asarray(slots, dtype=np.int64)
        self.pairs[:m] = [self.pairs[s] for s in slots]
        self.pairs[m:] = [None] * (len(self.pairs) - m)
        self.count[:m] = self.count[index]
        self.count[m:] = 0
        self._buffer[:m] = self._buffer[index]
        with torch.inference_mode():
            at = to_device(slots, self._device)
            for tensor in (self.seeds, self.draws, self._budget, self._state):
                tensor[:m] = tensor.index_select(0, at)

    # ------------------------------------------------------------------------------------------------ a step

    def finish_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """The finish code of each of rows [0, len(tokens)) once it takes its token (device, int64), advancing the
        stop states; a hole's code is meaningless."""
        n = tokens.shape[0]
        code = torch.zeros(n, dtype=torch.int64, device=tokens.device)
        ended = self.draws[:n] + 1 >= self._budget[:n]
        code.masked_fill_(ended, LENGTH)
        if self._stop is not None:
            moved = self._stop[self._state[:n] * self._vocab + tokens]
            self._state[:n] = moved >> 1
            code.masked_fill_((moved & 1).bool(), STOP)
        if self._eos is not None:
            code.masked_fill_(self._eos[tokens], EOS)
        return code

    def advance(self, n: int) -> None:
        """Rows [0, n) drew their token (their draw index moves on)."""
        self.draws[:n] += 1

    def record(self, tokens: np.ndarray, codes: np.ndarray, live: np.ndarray) -> list[tuple[int, int]]:
        """The host's share of a step with device checks: the live rows' tokens appended (not an EOS), and the
        (slot, code) of the rows that finished. `live`: the decoder's mask of the rows that hold a sample."""
        n = tokens.shape[0]
        live = live[:n]
        appended = np.flatnonzero(live & (codes != EOS))
        self._buffer[appended, self.count[appended]] = tokens[appended]
        self.count[appended] += 1
        ended = np.flatnonzero(live & (codes != GOING))
        return list(zip(ended.tolist(), codes[ended].tolist(), strict=True))

    def tokens_of(self, slot: int) -> list[int]:
        return self._buffer[slot, : self.count[slot]].tolist()


@torch.inference_mode()
def decode_continuous(
    backend: CausalLMBackend,
    units: list[Unit],
    max_rows: int,
    rules: TokenRules,
    emit: Emit,
    on_token: TokenHook | None,
    on_step: StepHook | None,
    overlap: bool | None = None,
) -> int:
    """Decode every sample of the units through one continuously refilled decoder of max_rows rows (the module
    docstring); emit each sample's partial as it finishes. Returns the samples emitted."""
    queue = deque(admission_parts(units, max_rows))
    if not queue:
        return 0
    capacity = max(len(u.prompt) + u.budget for u in queue)

    def take(room: int) -> list[Unit]:
        taken: list[Unit] = []
        while queue and len(queue[0].samples) <= room:
            taken.append(queue.popleft())
            room -= len(taken[-1].samples)
        return taken

    first = take(max_rows)
    decoder = backend.open_batch_decoder(
        [u.prompt for u in first], [len(u.samples) for u in first], capacity=capacity, slots=max_rows
    )
    logits = decoder.first_logits
    device = logits.device
    if overlap is None:
        overlap = device.type == "cuda"
    overlap = overlap and on_token is None
    device_checks = on_token is None and (rules.matcher is not None or not rules.stops)
    book = SlotBook(device, max_rows, rules, logits.shape[1], device_checks)
    pairs = [(unit, sample) for unit in first for sample in unit.samples]
    book.fill(list(range(len(pairs))), pairs)
    threshold = max(1, max_rows // 8)
    decoder.hold_bucket(max_rows if queue else None)
    clock = rules.clock
    sampling = rules.temperature != 0.0
    key_dtype = decoder.logits_dtype  # the head's dtype: the sampler's exact 16-bit sort keys (sampling.py)
    count = 0
    while True:
        n = logits.shape[0]
        picked = clock.timed(
            device,
            choose_tokens,
            logits,
            rules.temperature,
            rules.top_p,
            book.seeds[:n] if sampling else None,
            book.draws[:n] if sampling else None,
            per_row=rules.deterministic,
            key_dtype=key_dtype,
        )
        if device_checks:
            codes = clock.timed(device, book.finish_codes, picked)
            copy = _HostCopy(torch.stack([picked, codes]))
        else:
            copy = _HostCopy(picked)
        book.advance(n)
        ahead = clock.timed(device, decoder.step, picked, a_step=True) if overlap else None
        host = copy.wait()
        if device_checks:
            ended = book.record(host[0], host[1], decoder.live)
            for slot, code in ended:
                _emit_finished(book, slot, code, rules, emit)
            finished = [slot for slot, _ in ended]
            count += len(finished)
        else:
            finished = []
            for slot in decoder.live_rows():
                if slot >= n:
                    continue
                unit, s = book.pairs[slot]  # type: ignore[misc]
                row = logits[slot] if on_token is not None else logits[:0]
                if take_token(unit, s, int(host[slot]), row, rules, emit, on_token):
                    finished.append(slot)
                    count += 1
        if on_step is not None:
            on_step()
        if finished:
            decoder.retire(finished)
            book.free(finished)
        live = decoder.live_count
        if ahead is not None:
            logits = ahead[: decoder.n]
        elif live:
            logits = clock.timed(device, decoder.step, picked[: decoder.n], a_step=True)
        else:
            logits = logits[:0]
        if not queue and live and live <= decoder.n // 2:  # the tail: compact so that the steps shrink
            kept = decoder.live_rows()
            decoder.keep(kept)
            book.keep(kept)
            logits = logits[to_device(kept, device)]
        admitted = take(decoder.free_rows) if queue and (decoder.free_rows >= threshold or not live) else []
        if not live and not admitted:
            return count
        if admitted:
            prompts, counts = [u.prompt for u in admitted], [len(u.samples) for u in admitted]
            rows, first_logits = clock.timed(device, decoder.admit, prompts, counts)
            new_pairs = [(unit, sample) for unit in admitted for sample in unit.samples]
            book.fill(rows, new_pairs)
            logits = _place(logits, decoder.n, rows, first_logits)
            if not queue:
                decoder.hold_bucket(None)


def _emit_finished(book: SlotBook, slot: int, code: int, rules: TokenRules, emit: Emit) -> None:
    """A sample the device checks ended: its tokens from the book, its completion and partial."""
    pair = book.pairs[slot]
    assert pair is not None
    unit, s = pair
    s.tokens = book.tokens_of(slot)
    s.done, s.finish_reason = True, _REASONS[code]
    finish_sample(s, rules.tokenizer, rules.stops)
    emit("partial", partial_event(unit.key, s, len(unit.prompt)))


def _place(logits: torch.Tensor, n: int, rows: list[int], first: torch.Tensor) -> torch.Tensor:
    """The next step's logits for rows [0, n): the stepped rows' as they are (n may have grown: new rows past them),
    the admitted rows' from their prefill."""
    if logits.shape[0] < n:
        logits = torch.cat([logits, logits.new_zeros((n - logits.shape[0], logits.shape[1]))])
    return logits[:n].index_copy_(0, to_device(rows, logits.device), first)


class _HostCopy:
    """A device tensor on its way to the host: on CUDA an asynchronous copy into pinned memory that `wait`
    completes (the work queued after it goes on); elsewhere the values at once. `wait` gives a numpy array."""

    def __init__(self, values: torch.Tensor) -> None:
        self._event: Any = None
        if values.device.type == "cuda":
            self._host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self._host.copy_(values, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = values

    def wait(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy()
