"""The `generate` op: n completions per prompt with temperature / top_p sampling or greedy decoding.

Each (key, sample_index) draws its uniforms from the counter-based sampler (sampling.py) keyed by sha256(seed, key,
sample_index) and its draw index, on the logits' device, so a sample is reproducible whatever else is in the
request. Stop strings are checked incrementally: on the bytes of the new tokens for a byte-level tokenizer
(stop_matcher.py), else on the decoded last tokens; the completion is the decoded new tokens cut at the first stop
string. EOS stops (the EOS text is not included);
`max_new_tokens` (or the model's last position) stops with finish_reason "length".

The decoding loop talks to the backend through `open_batch_decoder(prompts, counts, capacity)` when the backend
`batches_prompts` (the native model: the samples of several prompts, up to `max_batch_rows` in all, prefilled
together and decoded as one batch, rows leaving as they finish; a backend that `admits_rows` batches continuously:
the next prompts' samples are admitted into freed rows while the others decode), else through
`open_decoder(prompt, n, capacity)`
(one prompt's samples at a time; `RecomputeDecoder` is the decoder of a backend without a KV cache). A sample's
tokens depend only on its own logits and generator, not on what else is in its batch (up to the floating-point
effects of batch shape on the logits). Request params are checked against schemas/engine/generate.json first.

`decode_prompts` is the same decoding for prompts given as token ids, with per-prompt budgets and seeds and an
optional `on_token` hook that sees every drawn token with the logits it was drawn from: the `generate` op calls it
after tokenizing, and so does the HTTP server (http_server/), so both decode through this one loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from .backend import Decoder
from .continuous import decode_continuous
from .errors import BadRequest
from .request_schemas import check_params
from .sample_rules import (
    Emit,
    HostClock,
    NoClock,
    Sample,
    StepHook,
    TokenHook,
    TokenRules,
    Unit,
    take_token,
)
from .sampling import SAMPLER, choose_tokens
from .stop_matcher import ByteStopMatcher

if TYPE_CHECKING:
    from .backend import CausalLMBackend
    from .loading import LoadedModel

# bigcode-evaluation-harness HumanEval stop list (EOS always stops as well).
DEFAULT_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
DEFAULT_MAX_NEW_TOKENS = 512
# Samples decoded together (across prompts) by a backend that batches prompts (the native model) when the request
# gives no max_batch_rows. The KV cache is rows x (longest prompt + budget) positions: 256 rows of StarCoder2-3B at
# 1100 positions hold 8.4 GB in bf16. A backend that batches continuously takes as many rows as its memory allows
# (backend.decode_rows_for), at most MAX_CONTINUOUS_ROWS.
DEFAULT_MAX_BATCH_ROWS = 256
MAX_CONTINUOUS_ROWS = 1024


class RecomputeDecoder:
    """The decoder of a backend without a KV cache (and the reference the cached decoders are tested against):
    each step recomputes every whole sequence with `next_token_logits`."""

    can_drop_rows = True

    def __init__(self, backend: CausalLMBackend, prompt: torch.Tensor, n: int) -> None:
        self._backend = backend
        self._seqs = [prompt.clone() for _ in range(n)]
        self.first_logits = backend.next_token_logits(self._seqs[:1]).expand(n, -1).contiguous()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self._seqs = [torch.cat([s, t.view(1).cpu()]) for s, t in zip(self._seqs, tokens, strict=True)]
        return self._backend.next_token_logits(self._seqs)

    def keep(self, rows: list[int]) -> None:
        self._seqs = [self._seqs[r] for r in rows]


def open_decoder(backend: CausalLMBackend, prompt: torch.Tensor, n: int, budget: int | None = None) -> Decoder:
    """The backend's decoder for n samples of one prompt. With `budget` (the most new tokens the caller will ask
    for) its capacity is prompt length + budget, so that a static cache is sized once (the native model's; HF's
    grows and ignores it); without, the backend's default capacity."""
    capacity = None if budget is None else len(prompt) + budget
    return backend.open_decoder(prompt, n, capacity=capacity)


def sample_seed(seed: int, key: str, sample_index: int) -> int:
    """A stable 63-bit seed for one (key, sample_index): sha256 of "seed\\0key\\0index"."""
    digest = hashlib.sha256(f"{seed}\0{key}\0{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class GenerateSettings:
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    stop: tuple[str, ...]
    add_bos: bool
    max_batch_rows: int | None = None  # None: the engine's default (DEFAULT_MAX_BATCH_ROWS, or memory-sized rows)


def _given(params: dict[str, Any], key: str, default: Any) -> Any:
    """The parameter's value; absent or null: the default."""
    value = params.get(key)
    return default if value is None else value


def parse_settings(params: dict[str, Any]) -> GenerateSettings:
    """The settings of schema-checked generate params (defaults filled in), after the checks that span fields."""
    n = int(_given(params, "n", 1))
    temperature = float(_given(params, "temperature", 0.0))
    top_p = float(_given(params, "top_p", 1.0))
    if temperature == 0.0 and n != 1:
        raise BadRequest(
            f"temperature 0 is greedy and gives one completion, but n = {n}",
            hint="use n = 1 with temperature 0, or a temperature above 0 for n samples",
        )
    max_new = int(_given(params, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
    seed = int(_given(params, "seed", 0))
    stop = tuple(_given(params, "stop", DEFAULT_STOP))
    add_bos = bool(params.get("add_bos", False))
    rows = params.get("max_batch_rows")
    max_rows = None if rows is None else int(rows)
    return GenerateSettings(n, temperature, top_p, max_new, seed, stop, add_bos, max_rows)


def _requests(params: dict[str, Any], settings: GenerateSettings) -> list[tuple[str, str, list[int]]]:
    """(key, prompt, sample indices) of each schema-checked request, after the checks that span requests."""
    out: list[tuple[str, str, list[int]]] = []
    seen: set[str] = set()
    for req in params["requests"]:
        key, prompt, samples = req["key"], req["prompt"], req.get("samples")
        if key in seen:
            raise BadRequest(f"key {key!r} appears twice", hint="give each request a unique key")
        seen.add(key)
        if samples is None:
            indices = list(range(settings.n))
        else:
            if settings.temperature == 0.0 and samples != [0]:
                raise BadRequest(f"greedy decoding has only sample 0, {key!r} asks for {samples}")
            indices = list(samples)
        out.append((key, prompt, indices))
    return out


def generate(loaded: LoadedModel, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    check_params("generate", params)
    settings = parse_settings(params)
    asked = params.get("sampler")
    if asked is not None and asked != SAMPLER:
        raise BadRequest(
            f"the samples were made with sampler {asked!r}, this engine samples with {SAMPLER!r}",
            hint="finish the run with the evalpipe version that began it, or start a new run (--fresh)",
        )
    if params.get("add_bos") is None and loaded.generate_add_bos:  # the Llama family's tokenizer rule (loading.py)
        settings = replace(settings, add_bos=True)
    requests = _requests(params, settings)
    facts = loaded.facts
    if settings.add_bos and facts.bos_token_id is None:
        raise BadRequest("add_bos is true but the model has no bos_token_id", hint="pass add_bos: false")
    tokenizer = loaded.tokenizer
    model_max = facts.max_position_embeddings or (1 << 62)

    prompts: list[PromptSamples] = []
    count = 0
    for key, prompt, indices in requests:
        ids = tokenizer.encode(prompt, add_special_tokens=False).ids if prompt else []
        if settings.add_bos:
            ids = [int(facts.bos_token_id), *ids]  # type: ignore[arg-type]
        if not ids:
            raise BadRequest(f"prompt of {key!r} is empty", hint="give a prompt or pass add_bos: true")
        if len(ids) >= model_max:
            # One prompt that leaves no room for a token is that prompt's result, not the request's failure: its
            # samples come back empty as `prompt_too_long` (a failure the caller records), the others are decoded.
            for index in indices:
                emit("partial", _prompt_too_long(key, index, len(ids)))
                count += 1
            continue
        prompts.append(PromptSamples(key, ids, indices, settings.max_new_tokens, settings.seed))

    decoded = decode_prompts(
        loaded,
        prompts,
        temperature=settings.temperature,
        top_p=settings.top_p,
        stop=settings.stop,
        max_batch_rows=settings.max_batch_rows,
        emit=emit,
    )
    return {"count": count + decoded.count, "batch_rows": decoded.batch_rows}


@dataclass(frozen=True)
class PromptSamples:
    """One prompt's samples for `decode_prompts`: its token ids, the sample indices to produce and at most
    `max_new_tokens` new tokens each (fewer where the model's positions end). Sample i draws from its own generator
    seeded with sample_seed(seed, seed_key, i) (`seed_key` None: `key`); `key` names the samples in the partial
    events and the on_token hook."""

    key: str
    ids: list[int]
    indices: list[int]
    max_new_tokens: int
    seed: int
    seed_key: str | None = None


def decode_prompts(
    loaded: LoadedModel,
    prompts: list[PromptSamples],
    *,
    temperature: float,
    top_p: float,
    stop: tuple[str, ...],
    max_batch_rows: int | None,
    emit: Emit,
    on_token: TokenHook | None = None,
    ignore_eos: bool = False,
    on_step: StepHook | None = None,
    clock: HostClock | None = None,
    overlap: bool | None = None,
) -> Decoded:
    """Decode the samples of prompts given as token ids (each non-empty and shorter than the model's positions;
    keys unique), emitting one `partial` per finished sample as the generate op does. Returns the samples emitted
    and the batch's rows. With the native model the samples of consecutive prompts share batches of up to
    max_batch_rows rows (None: DEFAULT_MAX_BATCH_ROWS, or for a backend that batches continuously as many as its
    memory allows, at most MAX_CONTINUOUS_ROWS). `ignore_eos` (the HTTP server's vLLM extension): EOS does not end a
    sample, which then runs to its budget. `clock` (benchmarks): the device time of the steps, admissions and token
    choices. `overlap`: launch each step before its tokens reach the host (default: on CUDA; continuous.py)."""
    facts = loaded.facts
    tokenizer = loaded.tokenizer
    eos_ids: set[int] = set() if ignore_eos else set(loaded.eos_token_ids)
    tail_tokens = max((len(s.encode("utf-8")) for s in stop), default=0) + 4
    model_max = facts.max_position_embeddings or (1 << 62)
    units: list[Unit] = []
    for p in prompts:
        if not p.ids or len(p.ids) >= model_max:
            raise BadRequest(f"prompt of {p.key!r} has {len(p.ids)} tokens: it needs 1 to {model_max - 1}")
        seed_key = p.key if p.seed_key is None else p.seed_key
        units.append(
            Unit(
                key=p.key,
                prompt=torch.tensor(p.ids, dtype=torch.long),
                budget=min(p.max_new_tokens, model_max - len(p.ids)),
                samples=[Sample(index=i, seed=sample_seed(p.seed, seed_key, i), tokens=[]) for i in p.indices],
            )
        )
    batched = loaded.backend.batches_prompts
    matcher = ByteStopMatcher.build(tokenizer, stop)
    rules = TokenRules(
        temperature, top_p, tokenizer, eos_ids, stop, tail_tokens, loaded.deterministic, matcher, clock or NoClock()
    )
    backend = loaded.backend
    if batched and backend.admits_rows:
        rows = max_batch_rows
        if rows is None:
            capacity = max((len(u.prompt) + u.budget for u in units), default=1)
            wanted = min(MAX_CONTINUOUS_ROWS, max(1, sum(len(u.samples) for u in units)))
            rows = backend.decode_rows_for(capacity, wanted)
        count = decode_continuous(backend, units, rows, rules, emit, on_token, on_step, overlap)
        return Decoded(count, rows)
    rows = DEFAULT_MAX_BATCH_ROWS if max_batch_rows is None else max_batch_rows
    count = 0
    for group in _batches(units, rows if batched else None):
        count += _decode_group(backend, group, batched, rules, emit, on_token, on_step)
    return Decoded(count, rows if batched else 1)


class Decoded(NamedTuple):
    count: int  # samples emitted
    batch_rows: int  # the most rows decoded together


def _batches(units: list[Unit], max_rows: int | None) -> list[list[Unit]]:
    """Groups of units decoded together. Without a limit (backends that decode one prompt at a time): one unit per
    group, all its samples. With one: consecutive prompts share a group up to max_rows samples in all, and a prompt
    with more samples than that is cut into several units. A sample's tokens do not depend on its group: each has
    its own generator."""
    if max_rows is None:
        return [[unit] for unit in units]
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    rows = 0
    for unit in units:
        samples = unit.samples
        while samples:
            room = max_rows - rows
            if room == 0:
                groups.append(current)
                current, rows = [], 0
                room = max_rows
            part, samples = samples[:room], samples[room:]
            current.append(Unit(unit.key, unit.prompt, unit.budget, part))
            rows += len(part)
    if current:
        groups.append(current)
    return groups


def _decode_group(
    backend: CausalLMBackend,
    group: list[Unit],
    batched: bool,
    rules: TokenRules,
    emit: Emit,
    on_token: TokenHook | None = None,
    on_step: StepHook | None = None,
) -> int:
    """Decode every sample of the group's units in one batch until each stops; emit each as it finishes (the
    backends that cannot admit rows into a running batch)."""
    rows = [(unit, sample) for unit in group for sample in unit.samples]  # row r of the first batch
    if batched:
        capacity = max(len(unit.prompt) + unit.budget for unit in group)
        decoder = backend.open_batch_decoder(
            [u.prompt for u in group], [len(u.samples) for u in group], capacity=capacity
        )
    else:
        (unit,) = group
        decoder = open_decoder(backend, unit.prompt, len(unit.samples), unit.budget)
    can_drop = decoder.can_drop_rows
    logits = decoder.first_logits
    active = list(range(len(rows)))  # row r of the decoder's batch is rows[active[r]]
    count = 0
    while True:
        live = [row for row in range(len(active)) if not rows[active[row]][1].done]
        done, still, fed = _advance([rows[active[row]] for row in live], live, logits, rules, emit, on_token)
        count += done
        if on_step is not None:
            on_step()
        if not still:
            return count
        if len(still) != len(active):
            if can_drop:
                decoder.keep(still)
                active = [active[r] for r in still]
            else:  # finished rows stay in the batch, fed a placeholder token, their logits ignored
                fed = [fed[still.index(r)] if r in still else 0 for r in range(len(active))]
        fed_tokens = torch.tensor(fed, dtype=torch.long)
        logits = rules.clock.timed(logits.device, decoder.step, fed_tokens, a_step=True)


def _advance(
    pairs: list[tuple[Unit, Sample]],
    logit_rows: list[int],
    logits: torch.Tensor,
    rules: TokenRules,
    emit: Emit,
    on_token: TokenHook | None,
) -> tuple[int, list[int], list[int]]:
    """One token for each live sample: pairs[i] draws from logits[logit_rows[i]]. Returns how many finished, the
    logit rows still going, and the tokens they are fed next."""
    rows = logits[logit_rows] if len(logit_rows) != logits.shape[0] else logits
    seeds = draws = None
    if rules.temperature != 0.0:
        # Each sample's key and draw index (its tokens so far): the counter-based sampler needs nothing else.
        counters = torch.tensor([[s.seed for _, s in pairs], [len(s.tokens) for _, s in pairs]], dtype=torch.long)
        seeds, draws = counters.to(logits.device)
    picks = rules.clock.timed(
        rows.device, choose_tokens, rows, rules.temperature, rules.top_p, seeds, draws, per_row=rules.deterministic
    ).tolist()
    done, still, fed = 0, [], []
    for (unit, s), row, token in zip(pairs, logit_rows, picks, strict=True):
        if take_token(unit, s, token, logits[row], rules, emit, on_token):
            done += 1
        else:
            still.append(row)
            fed.append(token)
    return done, still, fed


def _prompt_too_long(key: str, index: int, n_prompt: int) -> dict[str, Any]:
    return {
        "key": key,
        "sample_index": index,
        "completion": "",
        "finish_reason": "prompt_too_long",
        "stop_sequence": None,
        "n_new_tokens": 0,
        "n_prompt_tokens": n_prompt,
    }
