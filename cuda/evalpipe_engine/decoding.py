"""KV-cache decoding for every native model (models/), whose step has static shapes and device-side positions, so
that on
CUDA each step is one CUDA graph replay (whole-model decode is otherwise launch-bound: hundreds of small kernels
per token).

Status: on CUDA the step is a graph replay with the Triton decode-attention kernel by default, since their GPU
tests (cuda/tests/test_decoding.py, test_decode_attention.py) passed on the H100 (2026-11-26): 3B bf16 decode at
batch 1 went from 10.2 ms per token eager to 3.7 ms (bench/results/decode-matrix-h100-*.json).
The model's fast-path switches (`model.fast_paths`, fast_paths.py: the load op's `cuda_graphs` / `decode_kernel`,
by default EVALPIPE_CUDA_GRAPHS / EVALPIPE_DECODE_KERNEL; 0 turns them off) give the eager step and PyTorch's
masked SDPA instead.

    dec = StaticDecoder(model, prompt, n, capacity=len(prompt) + max_new_tokens)   # or model.open_decoder(...)
    dec = StaticDecoder(model, [p0, p1], [n0, n1], capacity=...)   # several prompts in one batch: rows
                                         # [0, n0) continue p0, [n0, n0 + n1) continue p1 (open_batch_decoder)
    logits = dec.first_logits            # [n, vocab] float32, after the prompt (values of dec.logits_dtype)
    logits = dec.step(tokens)            # tokens [n] int64 -> [n, vocab] float32
    dec.keep([0, 2])                     # finished samples leave; n shrinks
    dec = StaticDecoder(model, [p0], [n0], capacity=..., slots=256)   # room for 256 rows in all
    dec.retire([1, 5])                   # continuous batching: finished rows become holes, nothing moves
    first = dec.admit([p2], [n2])        # new samples prefilled into the holes, then rows past n:
                                         # first.rows are their rows, first.logits their first logits
    dec.hold_bucket(256)                 # steps run for 256 rows (one graph) while the batch is kept full

- Prefill: the prompts go once through the model's forward with a packed PrefillContext whose `kv_out` collects
  each layer's rotated keys and values (the packed varlen path and its attention kernels); each prompt's keys and
  values are copied into its samples' rows of the cache. Every row has its own length (a device tensor): rows of
  different prompts sit at different positions.
- Cache: per layer k and v [rows, Hkv, capacity, D] in the activation dtype, allocated (zeroed) once. `capacity`
  counts prompt and generated positions (default prompt + 256, capped at the model's max_position_embeddings);
  a step past it, or past the model's maximum, raises ModelError before touching the device.
- Step (`_body`): the model's own forward (the one the prefill runs: models/base.py) over the static token
  buffer with a DecodeContext, then `model.compute_logits`. Only the attention layer reads the context
  (layers/attention.py): on CUDA one Triton launch rotates the queries in place and writes each row's rotated key
  and value at its position in the cache (kernels/rope.py rope_kv_append_; on CPU `apply_rope_inplace` and two
  index writes with device indices), then attention through kernels/decode_attention.py (the per-row lengths are
  a device tensor: the launch is the same at every step). The device positions are incremented in the step
  itself, so a graph replay advances them. Padding rows (see below) may run past the capacity: their positions
  are clamped, their values never read. decoding.py imports no model: the import cycle with model.py is gone.
- CUDA graphs: the first step for a batch size runs eagerly on a side stream (the warm-up: Triton compiles and
  autotunes there, never during capture), then the step is captured in a `torch.cuda.CUDAGraph` on a private
  memory pool; later steps copy the tokens into the static buffer, replay, and return a clone of the static
  logits. Graphs are per batch size: a step runs for the live rows rounded up on the ladder 1, 2, 4, 8, 16, 32,
  48, 64, ... (never more than the rows allocated), the padding rows computing ignored values. `keep(rows)`
  compacts the kept rows to the front of the cache (a gather of the valid positions, no allocation of the cache)
  and only when the rounded batch size changes is the graph dropped and captured again at the next step. On CPU
  (and on CUDA with the cuda_graphs switch off) the same static step runs eagerly.
- Holes (continuous batching): `retire(rows)` frees rows without moving any cache (the compaction `keep` does is a
  read and write of every live row's keys and values: at 1024 rows of 600 positions about 18 GB, ~10 ms on the
  H200, once per finished sample's step); a hole is stepped like a padding row (its length reset to 0, so its
  attention reads one position), its token and logits ignored, until `admit` prefills a new sample into it.
  Trailing holes shrink n. `live` (numpy bool per row) is the one record of which rows hold a sample: the
  continuous loop reads it rather than keeping its own.
- Attention backend: the Triton decode kernel on CUDA (whatever the model's `attn`) unless the decode_kernel switch
  is off; then, and on CPU, a masked SDPA over
  the whole static cache (same function, same static shapes), or the real kernel through Triton's interpreter
  when TRITON_INTERPRET=1 and the model's `attn` is `flash` (as attention.py does for prefill).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from .errors import ModelError
from .fast_paths import GRAPHS_ENV, KERNEL_ENV, env_switch
from .invariant import decode_phase
from .layers.attention import masked_decode_attention, per_row_decode_attention  # noqa: F401 (kept import path)
from .layers.context import DecodeContext
from .transfers import tensor_to_device, to_device

if TYPE_CHECKING:
    from .models.base import NativeCausalLM

log = logging.getLogger(__name__)

DEFAULT_NEW_POSITIONS = 256
_SCATTER_BYTES = 64 << 20  # the most keys (and as many values) a prefill gathers at once for its rows


def graphs_enabled() -> bool:
    """The cuda_graphs switch's environment default: on unless EVALPIPE_CUDA_GRAPHS=0 (then the same static step
    runs eagerly)."""
    return env_switch(GRAPHS_ENV)


def decode_kernel_enabled() -> bool:
    """The decode_kernel switch's environment default: the Triton decode-attention kernel on CUDA unless
    EVALPIPE_DECODE_KERNEL=0 (then CUDA uses the masked SDPA over the static cache: the same function, more work)."""
    return env_switch(KERNEL_ENV)


def batch_bucket(n: int, rows: int) -> int:
    """The batch size a step runs for n live samples in a cache of `rows` rows: n rounded up to 1, 2, 4, 8, 16,
    then a multiple of 16, never more than `rows`. One CUDA graph per bucket."""
    b = 1 << max(0, n - 1).bit_length() if n <= 16 else -(-n // 16) * 16
    return min(b, rows)


def distinct_prompts(prompts: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
    """The distinct prompts (first occurrences, in order) and, for each prompt, the index of its distinct one.
    Prompts off the CPU are all taken as distinct (comparing them would wait for the device)."""
    if any(p.device.type != "cpu" for p in prompts):
        return list(prompts), list(range(len(prompts)))
    seen: dict[bytes, int] = {}
    distinct: list[torch.Tensor] = []
    source: list[int] = []
    for p in prompts:
        key = p.to(torch.int64).numpy().tobytes()
        if key not in seen:
            seen[key] = len(distinct)
            distinct.append(p)
        source.append(seen[key])
    return distinct, source


def kv_scatter_map(spans: list[tuple[int, int]], counts: list[int], slots: list[int]) -> tuple[np.ndarray, ...]:
    """Where a prefill's keys and values go: (cache row, position, packed token) int64 arrays, one entry per
    position of every new row; prompt i (packed tokens [spans[i][0], spans[i][1])) continues in the next counts[i]
    of `slots`."""
    rows, positions, tokens = [], [], []
    at = 0
    for (a, b), c in zip(spans, counts, strict=True):
        rows.append(np.repeat(np.asarray(slots[at : at + c], dtype=np.int64), b - a))
        positions.append(np.tile(np.arange(b - a, dtype=np.int64), c))
        tokens.append(np.tile(np.arange(a, b, dtype=np.int64), c))
        at += c
    return np.concatenate(rows), np.concatenate(positions), np.concatenate(tokens)


class Admitted(NamedTuple):
    """What `admit` gives: the new samples' rows (holes first, then rows past the old n) and their first
    next-token logits [len(rows), vocab] float32, row i's for rows[i]."""

    rows: list[int]
    logits: torch.Tensor


class StaticDecoder:
    """Incremental decoding of samples of one or more prompts with a static cache and (on CUDA) one graph
    replay per step. A `backend.Decoder` (`first_logits`, `step`, `keep`, `can_drop_rows`), plus `n`, `length`
    and `lengths` (each live row's length: prompt + fed tokens)."""

    can_drop_rows = True

    def __init__(
        self,
        model: NativeCausalLM,
        prompt: torch.Tensor | Sequence[torch.Tensor],
        n: int | Sequence[int],
        capacity: int | None = None,
        *,
        slots: int | None = None,
    ) -> None:
        prompts = [prompt] if isinstance(prompt, torch.Tensor) else list(prompt)
        counts = [n] * len(prompts) if isinstance(n, int) else [int(c) for c in n]
        if not prompts or len(counts) != len(prompts):
            raise ModelError(f"decoder needs one sample count per prompt: {len(prompts)} prompts, {len(counts)} counts")
        if min(counts) < 1:
            raise ModelError(f"decoder needs n >= 1 samples per prompt, got {counts}")
        cfg = model.cfg
        rows = sum(counts)
        self.model = model
        self.n = 0
        self.device = model.device
        # rows allocated (`slots`: room for samples admitted later, continuous batching); the live rows are [0, n)
        self._rows = max(rows, int(slots or 0))
        self._min_bucket = 0  # hold_bucket's floor
        self.lengths: list[int] = []  # each row's length (a hole's: 0)
        # which rows hold a sample: the one record of it (the continuous loop reads it too); the rows in [0, n)
        # that are not live are holes (retired: free for admit, stepped as padding)
        self.live = np.zeros(self._rows, dtype=bool)
        longest = max(len(p) for p in prompts)
        cap = longest + DEFAULT_NEW_POSITIONS if capacity is None else int(capacity)
        cap = min(cap, cfg.max_position_embeddings)
        if cap < longest:
            raise ModelError(
                f"decoder capacity {cap} is smaller than the prompt's {longest} tokens",
                hint="open the decoder with capacity >= prompt length + max_new_tokens",
            )
        self.capacity = cap
        dev = self.device
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        with torch.inference_mode():
            self._tokens = torch.zeros(self._rows, dtype=torch.int64, device=dev)  # static input buffer
            self._lens = torch.zeros(self._rows, dtype=torch.int64, device=dev)  # each row's next position
            self._row_ids = torch.arange(self._rows, device=dev)
            self._key_positions = torch.arange(cap, device=dev)
        self._window = cfg.sliding_window
        fast = model.fast_paths
        self._kernel = (dev.type == "cuda" and fast.use_decode_kernel) or (
            os.environ.get("TRITON_INTERPRET") == "1" and model.attn == "flash"
        )
        self._use_graphs = dev.type == "cuda" and fast.use_cuda_graphs
        # RoPE + cache append in one Triton launch on CUDA (kernels/rope.py rope_kv_append_) when the head dim's
        # half is a power of two (the kernel's vector width); otherwise, and on CPU, the RoPE and two index writes
        half = cfg.head_dim // 2
        self._fused_rope = dev.type == "cuda" and half & (half - 1) == 0
        self._bucket = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_rows = 0
        self._static_logits: torch.Tensor | None = None
        self._pool: Any = None  # the private memory pool of this decoder's graphs
        self.captures = 0  # graphs captured so far (tests and benchmarks read it)
        self.first_logits = self._prefill_rows(prompts, counts, list(range(rows)))

    @torch.inference_mode()
    def _prefill_rows(self, prompts: list[torch.Tensor], counts: list[int], slots: list[int]) -> torch.Tensor:
        """Prefill the prompts together (the packed path) into cache rows `slots` (holes or rows from n on, n grows
        to cover them): counts[i] consecutive slots continue prompts[i]. Equal prompts are prefilled once (each
        sample of a prompt may come as its own unit: its own budget). Returns those rows' first next-token logits
        [sum(counts), vocab] float32, in the order of `slots`."""
        model, cfg = self.model, self.model.cfg
        distinct, source = distinct_prompts(prompts)
        kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        packed = model.pack(distinct, kv_out=kv)
        hidden = model.forward(packed.ids, packed)
        packed.kv_out = None
        bounds = packed.bounds
        last = to_device([b - 1 for b in bounds[1:]], self.device)
        raw = model.compute_logits(hidden[last])
        self.logits_dtype = raw.dtype  # the head's dtype: every float32 logit returned is exactly one of its values
        per_prompt = raw.float()
        del raw
        del hidden
        row_source = to_device([source[i] for i, c in enumerate(counts) for _ in range(c)], self.device)
        first = per_prompt.index_select(0, row_source)
        spans = [(bounds[u], bounds[u + 1]) for u in source]
        prompt_lengths = [b - a for a, b in spans]
        new_lengths = [length for length, c in zip(prompt_lengths, counts, strict=True) for _ in range(c)]
        hkv, d = cfg.num_key_value_heads, cfg.head_dim
        slot_index = to_device(slots, self.device)
        # one gather and one scatter per layer, whatever the number of prompts (in parts of at most _SCATTER_BYTES
        # of gathered keys, so that many samples of a long prompt need no large transient): each new row's
        # positions take their prompt's packed keys and values
        rows, positions, tokens = (
            tensor_to_device(torch.from_numpy(a), self.device) for a in kv_scatter_map(spans, counts, slots)
        )
        fresh = not self._k
        for layer, (k, v) in enumerate(kv):
            if fresh:
                # zero-filled: the CPU path's masked SDPA reads every position (0 * garbage could be NaN)
                self._k.append(k.new_zeros((self._rows, hkv, self.capacity, d)))
                self._v.append(v.new_zeros((self._rows, hkv, self.capacity, d)))
            part = max(1, _SCATTER_BYTES // (hkv * d * k.element_size()))
            for at in range(0, rows.numel(), part):
                r, p, t = rows[at : at + part], positions[at : at + part], tokens[at : at + part]
                self._k[layer][r, :, p] = k[t]
                self._v[layer][r, :, p] = v[t]
        del kv
        self._lens.index_copy_(0, slot_index, to_device(new_lengths, self.device))
        top = max(slots) + 1
        if top > self.n:
            self.lengths.extend([0] * (top - self.n))
            self.n = top
        for slot, length in zip(slots, new_lengths, strict=True):
            self.lengths[slot] = length
        self.live[slots] = True
        self._rebucket()
        return first

    @torch.inference_mode()
    def admit(self, prompts: Sequence[torch.Tensor], counts: Sequence[int]) -> Admitted:
        """Continuous batching: counts[i] new samples of prompts[i] join the batch, prefilled together into the
        holes (lowest first) and then rows from n on (their keys and values written into free cache rows; the live
        rows are untouched). Returns their rows and first next-token logits; the next `step` takes one token for
        every row in [0, n), the new ones included."""
        prompts, counts = list(prompts), [int(c) for c in counts]
        if not prompts or len(prompts) != len(counts) or min(counts) < 1:
            raise ModelError(f"admit needs prompts with n >= 1 samples each, got counts {counts}")
        m = sum(counts)
        if m > self.free_rows:
            raise ModelError(f"admit of {m} rows: only {self.free_rows} of {self._rows} are free")
        longest = max(len(p) for p in prompts)
        if longest >= self.capacity:
            raise ModelError(
                f"a prompt of {longest} tokens does not fit the decoder's capacity of {self.capacity} positions",
                hint="open the decoder with capacity >= the longest prompt + max_new_tokens",
            )
        holes = self._hole_rows()[:m]
        slots = holes + list(range(self.n, self.n + m - len(holes)))
        return Admitted(slots, self._prefill_rows(prompts, counts, slots))

    @property
    def free_rows(self) -> int:
        """Rows allocated but not live (holes and rows past n): room for `admit`."""
        return self._rows - self.live_count

    @property
    def live_count(self) -> int:
        return int(np.count_nonzero(self.live))

    @property
    def holes(self) -> frozenset[int]:
        """The retired rows below n."""
        return frozenset(self._hole_rows())

    def _hole_rows(self) -> list[int]:
        return np.flatnonzero(~self.live[: self.n]).tolist()

    def live_rows(self) -> list[int]:
        return np.flatnonzero(self.live).tolist()

    @torch.inference_mode()
    def retire(self, rows: Sequence[int]) -> None:
        """Finished samples leave without any cache moving: their rows become holes (stepped as padding, length 0,
        tokens and logits ignored) until `admit` fills them; holes at the end shrink n."""
        rows = [int(r) for r in rows]
        if len(set(rows)) != len(rows) or any(r < 0 or r >= self.n or not self.live[r] for r in rows):
            raise ModelError(f"retire needs distinct live rows in [0, {self.n}), got {rows}")
        if not rows:
            return
        self._lens.index_fill_(0, to_device(rows, self.device), 0)
        for r in rows:
            self.lengths[r] = 0
        self.live[rows] = False
        while self.n and not self.live[self.n - 1]:
            self.n -= 1
        del self.lengths[self.n :]
        self._rebucket()

    def hold_bucket(self, rows: int | None) -> None:
        """Run steps for at least `rows` rows (None: release) so that a batch kept full by admissions replays one
        CUDA graph instead of capturing again each time the live count crosses a bucket edge."""
        self._min_bucket = 0 if rows is None else min(int(rows), self._rows)
        self._rebucket()

    def _rebucket(self) -> None:
        bucket = max(batch_bucket(max(self.n, 1), self._rows), self._min_bucket)
        if bucket != self._bucket:
            self._bucket = bucket
            self._drop_graph()

    @property
    def length(self) -> int:
        """The longest live row's length (with one prompt: every row's)."""
        return max(self.lengths[: self.n])

    @property
    def graphed(self) -> bool:
        """True when steps replay a CUDA graph (CUDA, graphs on, and no capture has failed)."""
        return self._use_graphs

    # ------------------------------------------------------------------------------------------------ keep

    @torch.inference_mode()
    def keep(self, rows: list[int]) -> None:
        """Keep only these samples (finished ones leave the batch): their cache rows move to the front, in the
        order given. The graph is captured again at the next step only if the rounded batch size changes."""
        m = len(rows)
        if len(set(rows)) != m or any(r < 0 or r >= self.n or not self.live[r] for r in rows):
            raise ModelError(f"keep needs distinct live rows in [0, {self.n}), got {rows}")
        self.live[:] = False
        self.live[:m] = True
        if m == 0:  # every sample finished: no live rows until the next admit
            self.lengths, self.n = [], 0
            self._rebucket()
            return
        if rows != list(range(m)):
            idx = to_device(rows, self.device)
            used = max(self.lengths[r] for r in rows)
            for cache in (*self._k, *self._v):
                cache[:m, :, :used] = cache[:, :, :used].index_select(0, idx)
            self._lens[:m] = self._lens.index_select(0, idx)
        self.lengths = [self.lengths[r] for r in rows]
        self.n = m
        self._rebucket()

    def _drop_graph(self) -> None:
        self._graph = None
        self._static_logits = None
        self._graph_rows = 0

    # ------------------------------------------------------------------------------------------------ step

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [n] int64 (one per sample) -> next-token logits [n, vocab] float32."""
        cfg = self.model.cfg
        if tokens.shape != (self.n,):
            raise ModelError(f"decoder step needs {self.n} tokens, got shape {tuple(tokens.shape)}")
        if self.length >= cfg.max_position_embeddings:  # the longest live row
            raise ModelError(
                f"generation reached the model's maximum context of {cfg.max_position_embeddings} tokens",
                hint="lower max_new_tokens or shorten the prompt",
            )
        if self.length >= self.capacity:
            raise ModelError(
                f"generation reached the decoder's capacity of {self.capacity} positions",
                hint="open the decoder with capacity >= prompt length + max_new_tokens",
            )
        if tokens.device.type == "cpu" and tokens.numel():
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= cfg.vocab_size:
                raise ModelError(f"token id {lo if lo < 0 else hi} is outside the vocabulary [0, {cfg.vocab_size})")
        self._tokens[: self.n].copy_(tokens)
        rows = self._bucket
        if not self._use_graphs:
            with decode_phase():
                logits = self._body(rows)
        elif self._graph is None or self._graph_rows != rows:
            logits = self._warm_up_and_capture(rows)
        else:
            with torch.cuda.device(self.device):
                self._graph.replay()
            assert self._static_logits is not None
            logits = self._static_logits[: self.n].clone()
        self.lengths = [length + 1 if length else 0 for length in self.lengths]  # holes stay at 0
        return logits[: self.n]

    def _warm_up_and_capture(self, rows: int) -> torch.Tensor:
        """The first step at this batch size runs eagerly on a side stream (it is a real step, and Triton compiles
        and autotunes there); then the same step is captured (capture runs nothing) for the following replays."""
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(current)
            with torch.cuda.stream(side), decode_phase():
                logits = self._body(rows)[: self.n].clone()
            current.wait_stream(side)
            logits.record_stream(current)
            self._drop_graph()
            # a fresh private pool per capture: the dropped graph's pool is released with it, and capturing into a
            # released pool's handle trips the caching allocator's use_count assert (seen on torch 2.11, H100)
            self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, pool=self._pool), decode_phase():
                    static = self._body(rows)
            except Exception as exc:  # a kernel that cannot be captured: keep decoding, eagerly
                log.warning("CUDA graph capture of the decode step failed (%s); decoding without graphs", exc)
                self._use_graphs = False
                return logits
            self._graph, self._static_logits, self._graph_rows = graph, static, rows
            self.captures += 1
        return logits

    def _body(self, rows: int) -> torch.Tensor:
        """One decode step for cache rows [0, rows): the model's own forward (the one prefill runs) over one token
        per row, its attention reading this step's DecodeContext; static shapes, every position on the device.
        Returns the float32 logits [rows, vocab]; advances the device positions."""
        model = self.model
        # padding rows (past the live ones) may have run past the capacity: clamp, their values are never read
        pos = self._lens[:rows].clamp(max=self.capacity - 1)
        ctx = DecodeContext(
            positions=pos,
            lengths=(pos + 1).to(torch.int32),
            row_ids=self._row_ids[:rows],
            k_cache=[k[:rows] for k in self._k],
            v_cache=[v[:rows] for v in self._v],
            key_positions=self._key_positions,
            use_kernel=self._kernel,
            fused_rope=self._fused_rope,
            deterministic=model.deterministic,
        )
        h = model.forward(self._tokens[:rows], ctx)
        logits = model.compute_logits(h).float()
        self._lens[:rows] += 1
        return logits
