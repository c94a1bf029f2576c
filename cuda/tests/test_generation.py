"""Generation pieces in-process: seeds, token choice, stop strings, and the KV-cache decoder against full
recomputation on the tiny preset."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import torch

from evalpipe_engine.generation import RecomputeDecoder, generate, sample_seed
from evalpipe_engine.loading import LoadedModel, load_model
from evalpipe_engine.sample_rules import find_stop as _find_stop

PROMPT = "def count_vowels(word: str) -> int:\n"


@pytest.fixture(scope="module", params=["native", "hf"])
def loaded(request: pytest.FixtureRequest) -> LoadedModel:
    return load_model({"model": "preset:tiny-starcoder2", "seed": 0, "device": "cpu", "backend": request.param})


def test_sample_seed_is_sha256_of_seed_key_index() -> None:
    expected = int.from_bytes(hashlib.sha256(b"7\x00HumanEval/3\x004").digest()[:8], "little") & (2**63 - 1)
    assert sample_seed(7, "HumanEval/3", 4) == expected
    seeds = {sample_seed(s, k, i) for s in (0, 1) for k in ("a", "b") for i in range(3)}
    assert len(seeds) == 12


def test_find_stop_picks_the_earliest() -> None:
    assert _find_stop("abc\ndef x\nclass", ("\nclass", "\ndef")) == (3, "\ndef")
    assert _find_stop("nothing here", ("\ndef",)) is None


def test_kv_cache_decoder_matches_full_recompute(loaded: LoadedModel) -> None:
    backend = loaded.backend
    prompt = torch.tensor(loaded.tokenizer.encode(PROMPT, add_special_tokens=False).ids)
    cached = backend.open_decoder(prompt, 3)  # type: ignore[attr-defined]
    plain = RecomputeDecoder(backend, prompt, 3)
    torch.testing.assert_close(cached.first_logits, plain.first_logits, rtol=1e-4, atol=1e-4)
    # Feed 80 steps (past the sliding window of 64) of different tokens per row; drop a row half way.
    gen = torch.Generator().manual_seed(0)
    for step in range(80):
        if step == 40:
            cached.keep([0, 2])
            plain.keep([0, 2])
        rows = 3 if step < 40 else 2
        tokens = torch.randint(0, loaded.facts.vocab_size, (rows,), generator=gen)
        torch.testing.assert_close(cached.step(tokens), plain.step(tokens), rtol=1e-4, atol=1e-4)


class _ContractOnly:
    """The same backend seen as one without a KV cache: its decoder recomputes (RecomputeDecoder), one prompt at a
    time, every other capability declared absent."""

    can_be_deterministic = False
    batches_prompts = False
    admits_rows = False

    def __init__(self, inner: Any) -> None:
        self.facts = inner.facts
        self._inner = inner

    def set_deterministic(self, on: bool) -> None:
        raise AssertionError("not called")

    def set_fast_paths(self, fast_paths: Any) -> None:
        raise AssertionError("not called")

    def target_logprobs(self, sequences: list[torch.Tensor]) -> list[torch.Tensor]:
        return self._inner.target_logprobs(sequences)

    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        return self._inner.next_token_logits(sequences)

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Any:
        return RecomputeDecoder(self, prompt, n)

    def open_batch_decoder(self, prompts: list[torch.Tensor], counts: list[int], capacity: int | None = None) -> Any:
        raise AssertionError("not called: batches_prompts is False")

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        raise AssertionError("not called")


class _NoKeepBackend(_ContractOnly):
    """A backend whose decoder cannot drop finished rows (can_drop_rows False): they stay in the batch."""

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Any:
        inner = self._inner.open_decoder(prompt, n)

        class Decoder:
            first_logits = inner.first_logits
            can_drop_rows = False

            def step(self, tokens: torch.Tensor) -> torch.Tensor:
                assert tokens.shape == (n,)
                return inner.step(tokens)

            def keep(self, rows: list[int]) -> None:
                raise AssertionError("not called: can_drop_rows is False")

        return Decoder()


def _run(loaded: LoadedModel, params: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    events: list[dict[str, Any]] = []
    result = generate(loaded, params, lambda event, data: events.append(data))
    assert result["count"] == len(events)
    return {(e["key"], e["sample_index"]): e for e in events}


@pytest.mark.parametrize("wrapper", [_ContractOnly, _NoKeepBackend])
def test_same_samples_through_any_decoder(loaded: LoadedModel, wrapper: type) -> None:
    params = {
        "requests": [{"key": "p", "prompt": PROMPT}, {"key": "q", "prompt": "class Stack:\n"}],
        "n": 4,
        "temperature": 0.8,
        "top_p": 0.9,
        "max_new_tokens": 24,
        "seed": 5,
        "stop": ["\n", "("],
    }
    reference = _run(loaded, params)
    other = LoadedModel(**{**loaded.__dict__, "backend": wrapper(loaded.backend)})
    assert _run(other, params) == reference
    reasons = {s["finish_reason"] for s in reference.values()}
    assert reasons <= {"stop", "eos", "length"}
    for sample in reference.values():
        assert "\n" not in sample["completion"] and "(" not in sample["completion"]


def test_length_is_bounded_by_the_model_maximum(loaded: LoadedModel) -> None:
    prompt = "x = 1\n" * 100
    n_prompt = len(loaded.tokenizer.encode(prompt, add_special_tokens=False).ids)
    assert n_prompt < loaded.facts.max_position_embeddings
    out = _run(
        loaded, {"requests": [{"key": "k", "prompt": prompt}], "temperature": 0, "max_new_tokens": 10_000, "stop": []}
    )
    sample = out[("k", 0)]
    assert sample["n_prompt_tokens"] == n_prompt
    # Greedy on this preset runs to the end: generation stops at the model's last position, reported as length.
    assert sample["finish_reason"] == "length"
    assert sample["n_new_tokens"] == loaded.facts.max_position_embeddings - n_prompt


def test_batching_across_prompts_changes_no_sample(loaded: LoadedModel) -> None:
    """The native model decodes samples of several prompts in one batch (up to max_batch_rows): the samples are
    the ones each prompt gets alone, for prompts of very different lengths, including one that runs into the
    model's maximum while a short one keeps going (its rows leave; padding rows are clamped, never read)."""
    if not loaded.backend.batches_prompts:
        pytest.skip("this backend decodes one prompt at a time")
    requests = [
        {"key": "short", "prompt": "def f(x):\n"},
        {"key": "long", "prompt": "x = 1\n" * 100},
        {"key": "mid", "prompt": PROMPT * 3},
    ]
    params = {"n": 3, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 600, "seed": 3, "stop": []}
    together = _run(loaded, {**params, "requests": requests})
    assert len(together) == 9
    for rows in (1, 2, 4):
        assert _run(loaded, {**params, "requests": requests, "max_batch_rows": rows}) == together, rows
    for request in requests:
        alone = _run(loaded, {**params, "requests": [request]})
        assert alone == {key: sample for key, sample in together.items() if key[0] == request["key"]}
    assert together[("long", 0)]["finish_reason"] == "length"
    n_long = together[("long", 0)]["n_prompt_tokens"]
    assert together[("long", 0)]["n_new_tokens"] == loaded.facts.max_position_embeddings - n_long


def test_batches_cut_prompts_by_rows() -> None:
    from evalpipe_engine.generation import _batches
    from evalpipe_engine.sample_rules import Sample as _Sample
    from evalpipe_engine.sample_rules import Unit as _Unit

    def unit(key: str, n: int) -> _Unit:
        return _Unit(key, torch.tensor([1]), 5, [_Sample(index=i, seed=0, tokens=[]) for i in range(n)])

    units = [unit("a", 3), unit("b", 1), unit("c", 6)]
    shape = [[(u.key, [s.index for s in u.samples]) for u in group] for group in _batches(units, 4)]
    assert shape == [[("a", [0, 1, 2]), ("b", [0])], [("c", [0, 1, 2, 3])], [("c", [4, 5])]]
    assert [[u.key for u in g] for g in _batches(units, None)] == [["a"], ["b"], ["c"]]


def test_max_batch_rows_is_validated(loaded: LoadedModel) -> None:
    from evalpipe_engine.errors import BadRequest

    for bad in (0, -1, 2.5, "8", True):
        with pytest.raises(BadRequest, match="max_batch_rows"):
            generate(loaded, {"requests": [{"key": "k", "prompt": "x"}], "max_batch_rows": bad}, lambda e, d: None)


def test_continuous_batching_admits_prompts_into_freed_rows(loaded: LoadedModel) -> None:
    """Continuous batching: with 4 rows for 16 samples, samples that stop early free rows that the next prompts'
    samples take while the others are still decoding (the decoder admits them), and every sample is the one its
    prompt gets alone."""
    if not loaded.backend.admits_rows:
        pytest.skip("this backend cannot admit rows into a running batch")
    backend = loaded.backend
    admitted: list[int] = []
    live_at_admission: list[int] = []
    opened = backend.open_batch_decoder

    def spying_open(*args: Any, **kw: Any) -> Any:
        decoder = opened(*args, **kw)
        admit = decoder.admit

        def counting_admit(prompts: list[torch.Tensor], counts: list[int]) -> Any:
            admitted.append(sum(counts))
            live_at_admission.append(decoder.n)
            return admit(prompts, counts)

        decoder.admit = counting_admit
        return decoder

    from evalpipe_engine.generation import PromptSamples, decode_prompts

    texts = ["def f(x):\n", PROMPT, "class Stack:\n", "x = 1\n" * 20, "import os\n", "# sum\n", "def g():\n", "y ="]
    budgets = [3, 40, 7, 25, 12, 33, 5, 18]  # samples end at different steps (random weights never stop by themselves)

    def prompts(indices: list[int]) -> list[PromptSamples]:
        enc = loaded.tokenizer.encode
        return [
            PromptSamples(f"p{i}", enc(texts[i], add_special_tokens=False).ids, [0, 1], budgets[i], seed=11)
            for i in indices
        ]

    def decode(indices: list[int], rows: int, overlap: bool = False) -> dict[tuple[str, int], dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kw = {"temperature": 0.9, "top_p": 0.95, "stop": (), "max_batch_rows": rows, "overlap": overlap}
        decode_prompts(loaded, prompts(indices), emit=lambda event, data: events.append(data), **kw)
        return {(e["key"], e["sample_index"]): e for e in events}

    backend.open_batch_decoder = spying_open  # type: ignore[method-assign]
    try:
        together = decode(list(range(8)), 4)
    finally:
        del backend.open_batch_decoder
    assert len(together) == 16
    assert sum(admitted) == 16 - 4 and len(admitted) >= 3  # the first 4 rows opened the batch, the rest came in
    assert max(live_at_admission) > 0  # rows were refilled while others were still decoding
    assert {s["n_new_tokens"] for s in together.values()} == set(budgets)
    for i in range(8):
        assert decode([i], 2) == {key: sample for key, sample in together.items() if key[0] == f"p{i}"}
    # Overlapped (each step launched before the host has seen its tokens, finished rows dropped one step later):
    # the same samples.
    assert decode(list(range(8)), 4, overlap=True) == together
    assert decode(list(range(8)), 3, overlap=True) == together


def test_decoder_admit_matches_a_fresh_decoder(loaded: LoadedModel) -> None:
    """Rows admitted into a running decoder get the first logits and the next steps a fresh decoder of their prompt
    gives, and the rows already running are not disturbed."""
    if not loaded.backend.admits_rows:
        pytest.skip("this backend cannot admit rows into a running batch")
    model = loaded.backend
    enc = loaded.tokenizer.encode
    a = torch.tensor(enc(PROMPT, add_special_tokens=False).ids)
    b = torch.tensor(enc("class Stack:\n    def push(self, v):\n", add_special_tokens=False).ids)
    running = model.open_batch_decoder([a], [2], capacity=80, slots=5)
    alone_a = model.open_batch_decoder([a], [2], capacity=80)
    alone_b = model.open_batch_decoder([b], [3], capacity=80)
    gen = torch.Generator().manual_seed(0)
    vocab = loaded.facts.vocab_size
    for _ in range(3):
        tokens = torch.randint(0, vocab, (2,), generator=gen)
        torch.testing.assert_close(running.step(tokens), alone_a.step(tokens), rtol=1e-5, atol=1e-5)
    assert running.free_rows == 3
    rows, first = running.admit([b], [3])
    assert rows == [2, 3, 4]
    torch.testing.assert_close(first, alone_b.first_logits, rtol=1e-5, atol=1e-5)
    for _ in range(4):
        ta = torch.randint(0, vocab, (2,), generator=gen)
        tb = torch.randint(0, vocab, (3,), generator=gen)
        both = running.step(torch.cat([ta, tb]))
        torch.testing.assert_close(both[:2], alone_a.step(ta), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both[2:], alone_b.step(tb), rtol=1e-5, atol=1e-5)
    from evalpipe_engine.errors import ModelError

    with pytest.raises(ModelError, match="only 0 of 5 are free"):
        running.admit([a], [1])


def test_device_finish_checks_equal_the_per_row_checks(loaded: LoadedModel) -> None:
    """The continuous loop decides on the device which samples end (EOS table, the stop strings' token automaton,
    the budget) and runs Python only for those; an on_token hook takes the per-row host path instead. Both give the
    same samples, with stops that random text meets (finish reasons stop and length both occur), overlapped or not,
    and with the EOS ids of a tokenizer whose EOS random sampling draws."""
    if not loaded.backend.admits_rows:
        pytest.skip("this backend cannot admit rows into a running batch")
    from evalpipe_engine.generation import PromptSamples, decode_prompts

    enc = loaded.tokenizer.encode
    texts = ["def f(x):\n", PROMPT, "class Stack:\n", "import os\n", "# sum\n", "y ="]
    prompts = [
        PromptSamples(f"p{i}", enc(t, add_special_tokens=False).ids, [0, 1, 2], 6 + 5 * i, seed=2)
        for i, t in enumerate(texts)
    ]
    stops = ("e", "\n ", "x")
    from evalpipe_engine.stop_matcher import ByteStopMatcher

    assert ByteStopMatcher.build(loaded.tokenizer, stops) is not None  # byte-level: the device path checks stops

    def decode(per_row: bool, overlap: bool) -> dict[tuple[str, int], dict[str, Any]]:
        events: list[dict[str, Any]] = []
        decode_prompts(
            loaded,
            prompts,
            temperature=1.0,
            top_p=1.0,
            stop=stops,
            max_batch_rows=5,
            emit=lambda event, data: events.append(data),
            on_token=(lambda key, index, token, logits: None) if per_row else None,
            overlap=overlap,
        )
        return {(e["key"], e["sample_index"]): e for e in events}

    expected = decode(per_row=True, overlap=False)
    assert len(expected) == 18
    reasons = {s["finish_reason"] for s in expected.values()}
    assert {"stop", "length"} <= reasons, reasons
    assert decode(per_row=False, overlap=False) == expected
    assert decode(per_row=False, overlap=True) == expected
