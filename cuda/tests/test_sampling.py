"""The counter-based sampler (sampling.py) and the byte-level stop check (stop_matcher.py)."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from evalpipe_engine.generation import DEFAULT_STOP, sample_seed
from evalpipe_engine.sample_rules import find_stop as _find_stop
from evalpipe_engine.sampling import (
    choose_tokens,
    pick_reference,
    pick_tokens,
    stable_order_token,
    uniform_reference,
    uniforms,
)
from evalpipe_engine.stop_matcher import ByteStopMatcher

TRAINED_TOKENIZER = Path(__file__).parents[1] / "evalpipe_engine" / "trained" / "tiny-starcoder2" / "tokenizer.json"


def test_uniforms_are_the_reference_function_in_int64_arithmetic() -> None:
    rng = random.Random(5)
    seeds = [0, 1, (1 << 63) - 1, *(rng.randrange(1 << 63) for _ in range(200))]
    draws = [rng.randrange(0, 5000) for _ in seeds]
    got = uniforms(torch.tensor(seeds), torch.tensor(draws)).tolist()
    assert got == [uniform_reference(s, d) for s, d in zip(seeds, draws, strict=True)]
    assert all(0.0 <= u < 1.0 for u in got)


def test_uniforms_of_one_sample_look_uniform() -> None:
    seed = sample_seed(0, "HumanEval/0", 3)
    u = uniforms(torch.full((20000,), seed), torch.arange(20000)).tolist()
    assert len(set(u)) == 20000
    deciles = Counter(int(x * 10) for x in u)
    assert all(abs(deciles[d] - 2000) < 200 for d in range(10)), deciles


def _draws(logits: torch.Tensor, temperature: float, top_p: float, count: int, seed: int = 9) -> list[int]:
    rows = logits.expand(count, -1)
    return choose_tokens(rows, temperature, top_p, torch.full((count,), seed), torch.arange(count)).tolist()


def test_choose_tokens_greedy_and_nucleus() -> None:
    logits = torch.tensor([0.0, 3.0, 2.0, 1.0, -1.0])
    assert choose_tokens(logits[None], 0.0, 1.0, None, None).tolist() == [1]
    probs = torch.softmax(logits.double(), -1)
    # The nucleus is the smallest set of most likely tokens whose mass reaches top_p.
    assert set(_draws(logits, 1.0, float(probs[1]) * 0.99, 200)) == {1}
    top2 = float(probs[1] + probs[2])
    assert set(_draws(logits, 1.0, top2 * 0.999, 300)) == {1, 2}
    assert set(_draws(logits, 1.0, top2 * 1.001, 600)) == {1, 2, 3}
    # Full distribution: frequencies follow softmax(logits / T).
    counts = Counter(_draws(logits, 2.0, 1.0, 4000))
    target = torch.softmax(logits.double() / 2.0, -1)
    for token in range(5):
        assert counts[token] / 4000 == pytest.approx(float(target[token]), abs=0.03)


def test_choose_tokens_rows_are_independent_of_the_batch() -> None:
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(1))
    seeds = torch.tensor([sample_seed(0, "k", i) for i in range(6)])
    draws = torch.tensor([0, 3, 7, 1, 0, 40])
    batched = choose_tokens(logits, 0.9, 0.95, seeds, draws).tolist()
    alone = [choose_tokens(logits[i : i + 1], 0.9, 0.95, seeds[i : i + 1], draws[i : i + 1]).item() for i in range(6)]
    assert batched == alone
    assert choose_tokens(logits, 0.9, 0.95, seeds, draws, per_row=True).tolist() == batched
    assert choose_tokens(logits, 0.0, 1.0, None, None).tolist() == logits.argmax(-1).tolist()


# (logit scale, temperature): flat, peaked, so wide that most probabilities underflow to 0, bf16-rounded logits
# (many equal logits), and tiny logits beside one large one (equal probabilities from different logits)
_LOGIT_KINDS = {
    "flat": (1.0, 0.8),
    "peaked": (4.0, 0.8),
    "underflow": (200.0, 0.1),
    "bf16": (1.0, 0.2),
    "equal_probs": (1e-17, 1.0),
}


def _logits_of(kind: str, rows: int, vocab: int, g: torch.Generator, device: str = "cpu") -> torch.Tensor:
    scale, _ = _LOGIT_KINDS[kind]
    x = torch.randn(rows, vocab, generator=g) * scale
    if kind == "bf16":
        x = x.bfloat16().float()
    if kind == "underflow":
        x[:, ::7] = float("-inf")
    if kind == "equal_probs":
        x[:, min(3, vocab - 1)] = 3.0
    return x.to(device)


@pytest.mark.parametrize("kind", sorted(_LOGIT_KINDS))
@pytest.mark.parametrize("top_p", [0.5, 0.95, 1.0])
def test_pick_tokens_gives_the_full_stable_sort_token(kind: str, top_p: float) -> None:
    """The pick sorts the float32 logits instead of the float64 probabilities; its token is the full sort's,
    ties included, and at the extreme uniforms (0 and the largest below 1)."""
    g = torch.Generator().manual_seed(hash((kind, top_p)) % 2**31)
    temperature = _LOGIT_KINDS[kind][1]
    for vocab in (2, 17, 1000, 4099):
        logits = _logits_of(kind, 48, vocab, g)
        u = torch.rand(48, generator=g, dtype=torch.float64)
        u[:2] = torch.tensor([0.0, 1.0 - 2.0**-53], dtype=torch.float64)
        got = pick_tokens(logits, temperature, top_p, u)
        assert got.tolist() == pick_reference(logits, temperature, top_p, u).tolist(), (kind, top_p, vocab)


@pytest.mark.parametrize("head", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", sorted(_LOGIT_KINDS))
def test_sixteen_bit_sort_keys_give_the_full_stable_sort_token(kind: str, head: torch.dtype) -> None:
    """Logits a bf16 / fp16 head made (its values held in float32), sorted on 16-bit keys: the same token as the
    full float64 sort, ties included (the 16-bit values of such logits are exact, so no two distinct ones merge)."""
    g = torch.Generator().manual_seed(hash((kind, str(head))) % 2**31)
    temperature = _LOGIT_KINDS[kind][1]
    for top_p in (0.5, 0.95, 1.0):
        for vocab in (2, 17, 1000, 4099):
            logits = _logits_of(kind, 32, vocab, g).to(head).float()
            u = torch.rand(32, generator=g, dtype=torch.float64)
            u[:2] = torch.tensor([0.0, 1.0 - 2.0**-53], dtype=torch.float64)
            got = pick_tokens(logits, temperature, top_p, u, key_dtype=head)
            assert got.tolist() == pick_reference(logits, temperature, top_p, u).tolist(), (kind, top_p, vocab)
            seeds, draws = torch.arange(32), torch.zeros(32, dtype=torch.int64)
            batched = choose_tokens(logits, temperature, top_p, seeds, draws, key_dtype=head)
            per_row = choose_tokens(logits, temperature, top_p, seeds, draws, per_row=True, key_dtype=head)
            assert torch.equal(batched, per_row)


def test_equal_probabilities_of_different_logits_take_the_stable_order() -> None:
    """Where the logit order is not the stable probability order (equal probabilities, different logits), the
    logit order's token at the searched position would be wrong: the pick's repair is what makes it right."""
    g = torch.Generator().manual_seed(5)
    logits = _logits_of("equal_probs", 64, 500, g)
    u = torch.rand(64, generator=g, dtype=torch.float64)
    probs = torch.softmax(logits.double(), dim=-1)
    assert probs[0].unique().numel() == 2  # one large probability, 499 equal ones from 499 different logits
    by_logit = torch.sort(logits, dim=-1, descending=True).indices
    cdf = torch.cumsum(probs.gather(-1, by_logit), dim=-1)
    pick = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).clamp_(max=499)
    expected = pick_reference(logits, 1.0, 1.0, u)
    assert by_logit.gather(-1, pick).squeeze(-1).tolist() != expected.tolist()
    assert pick_tokens(logits, 1.0, 1.0, u).tolist() == expected.tolist()


def test_stable_order_token_counts_ties_by_index() -> None:
    probs = torch.tensor([[0.1, 0.3, 0.1, 0.3, 0.0, 0.1, 0.0, 0.1]], dtype=torch.float64)
    # stable descending order: 1, 3 (0.3); 0, 2, 5, 7 (0.1); 4, 6 (0.0)
    stable = [1, 3, 0, 2, 5, 7, 4, 6]
    for position, token in enumerate(stable):
        value = probs[:, stable[position] : stable[position] + 1]
        pick = torch.tensor([[position]])
        assert stable_order_token(probs, value, pick).tolist() == [token]


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="the Triton kernel runs interpreted in CI")
@pytest.mark.parametrize("kind", sorted(_LOGIT_KINDS))
def test_stable_pick_kernel_gives_the_stable_order_token(kind: str) -> None:
    """kernels/stable_pick.py (the CUDA path of pick_tokens) against stable_order_token at every position of rows
    with and without ties (bf16 and fp16 heads' logits tie often; equal_probs ties different logits), through
    Triton's interpreter."""
    from evalpipe_engine.kernels.stable_pick import stable_pick

    g = torch.Generator().manual_seed(hash(kind) % 2**31)
    temperature = _LOGIT_KINDS[kind][1]
    tied_rows = 0
    for head in (None, torch.bfloat16, torch.float16):
        logits = _logits_of(kind, 6, 300, g)
        if head is not None:
            logits = logits.to(head).float()
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        order = torch.sort(logits, dim=-1, descending=True).indices
        ordered = probs.gather(-1, order)
        for position in (0, 1, 2, 3, 150, 298, 299):
            pick = torch.full((6, 1), position)
            value = ordered.gather(-1, pick)
            tied_rows += int(((probs == value).sum(-1) > 1).sum())
            want = stable_order_token(probs, value, pick)
            assert torch.equal(stable_pick(probs, ordered, order, pick), want), (kind, head, position)
    assert tied_rows > 0 or kind == "peaked", "the tie path was not reached"  # peaked: no ties at these positions


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", sorted(_LOGIT_KINDS))
def test_pick_tokens_gives_the_full_stable_sort_token_on_gpu(kind: str) -> None:
    """The continuous loop's shape (1024 rows of StarCoder2's 49152 tokens) on the GPU, fresh random logits."""
    g = torch.Generator().manual_seed(11)
    temperature = _LOGIT_KINDS[kind][1]
    for top_p in (0.95, 1.0):
        logits = _logits_of(kind, 1024, 49152, g, "cuda")
        u = torch.rand(1024, generator=g, dtype=torch.float64).cuda()
        got = pick_tokens(logits, temperature, top_p, u)
        assert torch.equal(got, pick_reference(logits, temperature, top_p, u)), (kind, top_p)
        head = logits.bfloat16().float()  # a bf16 head's logits, sorted on bf16 keys as the continuous loop does
        got16 = pick_tokens(head, temperature, top_p, u, key_dtype=torch.bfloat16)
        assert torch.equal(got16, pick_reference(head, temperature, top_p, u)), (kind, top_p, "bf16 keys")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(TRAINED_TOKENIZER))


def test_token_bytes_concatenate_to_the_decoded_text(tokenizer: Tokenizer) -> None:
    matcher = ByteStopMatcher.build(tokenizer, DEFAULT_STOP)
    assert matcher is not None
    rng = random.Random(3)
    vocab = tokenizer.get_vocab_size()
    for _ in range(300):
        ids = [rng.randrange(vocab) for _ in range(rng.randrange(1, 30))]
        text = b"".join(matcher.token_bytes[i] for i in ids).decode("utf-8", errors="replace")
        assert text == tokenizer.decode(ids, skip_special_tokens=False), ids


def _first_stop_by_decoding(tokenizer: Tokenizer, ids: list[int], stops: tuple[str, ...]) -> int | None:
    for end in range(1, len(ids) + 1):
        if _find_stop(tokenizer.decode(ids[:end], skip_special_tokens=False), stops) is not None:
            return end - 1
    return None


def _first_stop_by_bytes(matcher: ByteStopMatcher, ids: list[int]) -> int | None:
    state = 0
    for at, token in enumerate(ids):
        hit, state = matcher.advance(state, token)
        if hit:
            return at
    return None


def test_byte_stop_check_finds_the_first_stop_a_decode_finds(tokenizer: Tokenizer) -> None:
    stops = (*DEFAULT_STOP, "é€", "x")
    matcher = ByteStopMatcher.build(tokenizer, stops)
    assert matcher is not None
    code = "def f(x):\n    return x\n\nclass A:\n    pass\n# done é€ <file_sep>\nif True:\n    print(1)\n"
    pieces = tokenizer.encode(code, add_special_tokens=False).ids
    rng = random.Random(11)
    vocab = tokenizer.get_vocab_size()
    for trial in range(200):
        ids = (
            list(pieces)
            if trial == 0
            else [rng.choice(pieces) if rng.random() < 0.7 else rng.randrange(vocab) for _ in range(40)]
        )
        for chosen in (stops, DEFAULT_STOP, ("\n",)):
            m = ByteStopMatcher.build(tokenizer, chosen)
            assert m is not None
            assert _first_stop_by_bytes(m, ids) == _first_stop_by_decoding(tokenizer, ids, chosen), (ids, chosen)


def test_a_tokenizer_that_is_not_byte_level_has_no_matcher() -> None:
    from tokenizers import decoders, models

    plain = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    plain.decoder = decoders.Metaspace()
    assert ByteStopMatcher.build(plain, DEFAULT_STOP) is None
    assert ByteStopMatcher.build(Tokenizer.from_file(str(TRAINED_TOKENIZER)), ()) is None


def test_stop_transition_table_gives_the_answers_advance_gives(tokenizer: Tokenizer) -> None:
    """The token table of the continuous loop's device check (stop_transitions): walking it from state 0 over
    random token streams (mostly pieces of code, so that stops occur) gives the hit and the state `advance` gives,
    for the HumanEval stops, overlapping ones and multi-byte ones; ids past the tokenizer's vocabulary (the model's
    padding) change nothing."""
    from evalpipe_engine.stop_matcher import stop_transitions

    code = "def f(x):\n    return x\n\nclass A:\n    pass\n# done é€ <file_sep>\nif True:\n    print(1)\n"
    pieces = tokenizer.encode(code, add_special_tokens=False).ids
    vocab = tokenizer.get_vocab_size()
    padded = vocab + 7
    rng = random.Random(5)
    for stops in (DEFAULT_STOP, (*DEFAULT_STOP, "é€", "x"), ("\n\n", "\n \n", "aa", "aab"), ("\n",)):
        matcher = ByteStopMatcher.build(tokenizer, stops)
        assert matcher is not None
        table = stop_transitions(matcher, padded)
        assert table.shape[1] == padded and table.dtype.name == "int32"
        assert stop_transitions(matcher, padded) is table  # built once
        hits = 0
        for _ in range(150):
            state = 0
            for _ in range(40):
                roll = rng.random()
                token = rng.choice(pieces) if roll < 0.7 else rng.randrange(vocab if roll < 0.95 else padded)
                hit, walked = matcher.advance(state, token)
                moved = int(table[state, token])
                assert (bool(moved & 1), moved >> 1) == (hit, walked), (stops, state, token)
                if hit:
                    hits += 1
                    break
                state = walked
        assert hits > 20  # the walks met stops
