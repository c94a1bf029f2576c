"""StaticDecoder (decoding.py): on CPU every step's logits equal full recomputation (`next_token_logits` over the
grown sequences) on the tiny config, with keep() in the middle, past sliding windows, and the capacity/maximum
errors; on the GPU the CUDA-graph step equals the eager static step and recomputation in bf16 and the quantized
modes, and a replayed step allocates nothing new."""

from __future__ import annotations

import os

import pytest
import torch
from _native_helpers import tiny_config

from evalpipe_engine import generation
from evalpipe_engine.decoding import (
    GRAPHS_ENV,
    KERNEL_ENV,
    StaticDecoder,
    batch_bucket,
    decode_kernel_enabled,
    graphs_enabled,
)
from evalpipe_engine.model import ModelError, NativeStarcoder2, Starcoder2Config

TOL = 1e-5  # float32 on CPU (measured ~1e-7)
CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _fast_paths_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graphs and the decode kernel are on by default; these tests say so explicitly (a developer's shell may have
    turned them off)."""
    monkeypatch.setenv(GRAPHS_ENV, "1")
    monkeypatch.setenv(KERNEL_ENV, "1")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _model(cfg: Starcoder2Config | None = None, attn: str = "sdpa", seed: int = 0) -> NativeStarcoder2:
    return NativeStarcoder2.random(cfg or tiny_config(), device="cpu", seed=seed, quant="fp32", attn=attn)


def _tokens(vocab: int, count: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, vocab, (count,), generator=gen)


def _recompute(model: NativeStarcoder2, seqs: list[torch.Tensor]) -> torch.Tensor:
    return model.next_token_logits(seqs)


def _attn_params() -> list[str]:
    # `flash` runs the Triton decode kernel through the interpreter when TRITON_INTERPRET=1 (else the masked SDPA)
    return ["sdpa", "flash"]


@pytest.mark.parametrize("attn", _attn_params())
@pytest.mark.parametrize("n", [1, 3])
def test_every_step_equals_recomputation(n: int, attn: str) -> None:
    model = _model(attn=attn)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(n)
    prompt = _tokens(vocab, 10, g)
    dec = StaticDecoder(model, prompt, n)
    assert dec.n == n and dec.length == 10 and dec.capacity == min(10 + 256, model.cfg.max_position_embeddings)
    assert dec._kernel == (attn == "flash" and INTERPRETED)
    first = _recompute(model, [prompt])
    assert dec.first_logits.shape == (n, vocab) and dec.first_logits.dtype == torch.float32
    assert rel(dec.first_logits, first.expand(n, -1)) <= TOL
    seqs = [prompt.clone() for _ in range(n)]
    steps = 12 if dec._kernel else 30  # past the window (16); the interpreted kernel is slow
    for _ in range(steps):
        tok = _tokens(vocab, n, g)
        seqs = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(seqs)]
        logits = dec.step(tok)
        assert logits.shape == (n, vocab) and logits.dtype == torch.float32
        assert rel(logits, _recompute(model, seqs)) <= TOL
        assert dec.length == seqs[0].numel()


@pytest.mark.parametrize("attn", _attn_params())
def test_keep_in_the_middle(attn: str) -> None:
    """5 rows; keep three in a new order (the step then runs 4 rows: one padding row), then one."""
    model = _model(attn=attn, seed=1)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(7)
    prompt = _tokens(vocab, 9, g)
    dec = StaticDecoder(model, prompt, 5, capacity=40)
    seqs = [prompt.clone() for _ in range(5)]
    for step in range(16):  # past the window (16)
        if step == 5:
            dec.keep([4, 0, 2])
            seqs = [seqs[4], seqs[0], seqs[2]]
            assert dec.n == 3 and dec._bucket == 4
        if step == 10:
            dec.keep([2])
            seqs = [seqs[2]]
            assert dec.n == 1 and dec._bucket == 1
        tok = _tokens(vocab, len(seqs), g)
        seqs = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(seqs)]
        assert rel(dec.step(tok), _recompute(model, seqs)) <= TOL, step


@pytest.mark.parametrize("attn", _attn_params())
def test_several_prompts_in_one_batch(attn: str) -> None:
    """Prompts of 10, 3 and 17 tokens with 2, 1 and 2 samples decode together: every row equals recomputation of
    its own sequence at every step, across the window (16), with keep() reordering rows of different prompts."""
    model = _model(attn=attn, seed=5)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(9)
    prompts = [_tokens(vocab, 10, g), _tokens(vocab, 3, g), _tokens(vocab, 17, g)]
    dec = StaticDecoder(model, prompts, [2, 1, 2], capacity=17 + 14)
    assert dec.n == 5 and dec.lengths == [10, 10, 3, 17, 17] and dec.length == 17 and dec.capacity == 31
    firsts = torch.cat([_recompute(model, [p]) for p in prompts])
    assert rel(dec.first_logits, firsts.repeat_interleave(torch.tensor([2, 1, 2]), dim=0)) <= TOL
    seqs = [prompts[0], prompts[0], prompts[1], prompts[2], prompts[2]]
    for step in range(14):
        if step == 4:
            dec.keep([3, 1, 2])  # a row of each prompt, in a new order
            seqs = [seqs[3], seqs[1], seqs[2]]
            assert dec.lengths == [s.numel() for s in seqs]
        tok = _tokens(vocab, len(seqs), g)
        seqs = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(seqs)]
        logits = dec.step(tok)
        for i, s in enumerate(seqs):
            assert rel(logits[i : i + 1], _recompute(model, [s])) <= TOL, (step, i)
    assert dec.lengths == [s.numel() for s in seqs]
    with pytest.raises(ModelError, match="capacity of 31 positions"):
        dec.step(_tokens(vocab, 3, g))  # the longest row (17 + 14) is full


def test_one_count_per_prompt_is_required() -> None:
    model = _model()
    g = torch.Generator().manual_seed(1)
    with pytest.raises(ModelError, match="one sample count per prompt"):
        StaticDecoder(model, [_tokens(211, 4, g), _tokens(211, 5, g)], [1, 2, 3])
    with pytest.raises(ModelError, match="n >= 1"):
        StaticDecoder(model, [_tokens(211, 4, g)], [0])


@pytest.mark.parametrize("window", [5, None])
def test_sliding_window_smaller_than_the_sequence(window: int | None) -> None:
    cfg = tiny_config(sliding_window=window, max_position_embeddings=64)
    model = _model(cfg, seed=2)
    g = torch.Generator().manual_seed(3)
    prompt = _tokens(cfg.vocab_size, 3, g)
    dec = StaticDecoder(model, prompt, 2, capacity=30)
    seqs = [prompt.clone(), prompt.clone()]
    for _ in range(20):
        tok = _tokens(cfg.vocab_size, 2, g)
        seqs = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(seqs)]
        assert rel(dec.step(tok), _recompute(model, seqs)) <= TOL
    if window is not None:  # and the window matters here: without it the logits are far off
        free = _model(tiny_config(sliding_window=None, max_position_embeddings=64), seed=2)
        assert rel(_recompute(free, seqs), _recompute(model, seqs)) > 100 * TOL


def test_capacity_and_model_maximum_errors() -> None:
    model = _model()
    g = torch.Generator().manual_seed(4)
    prompt = _tokens(model.cfg.vocab_size, 10, g)
    dec = StaticDecoder(model, prompt, 2, capacity=13)
    for _ in range(3):
        dec.step(_tokens(model.cfg.vocab_size, 2, g))
    with pytest.raises(ModelError, match="capacity of 13 positions") as err:
        dec.step(_tokens(model.cfg.vocab_size, 2, g))
    assert err.value.hint and "capacity" in err.value.hint
    assert dec.length == 13

    small = _model(tiny_config(max_position_embeddings=20))
    dec = StaticDecoder(small, _tokens(small.cfg.vocab_size, 17, g), 1, capacity=1000)  # capped at the model's maximum
    assert dec.capacity == 20
    for _ in range(3):
        dec.step(_tokens(small.cfg.vocab_size, 1, g))
    with pytest.raises(ModelError, match="maximum context of 20 tokens") as err:
        dec.step(_tokens(small.cfg.vocab_size, 1, g))
    assert err.value.hint == "lower max_new_tokens or shorten the prompt"

    with pytest.raises(ModelError, match="smaller than the prompt"):
        StaticDecoder(model, prompt, 1, capacity=5)
    with pytest.raises(ModelError, match="n >= 1"):
        StaticDecoder(model, prompt, 0)


def test_bad_steps_and_keeps_are_refused() -> None:
    model = _model()
    prompt = torch.arange(6)
    dec = StaticDecoder(model, prompt, 3, capacity=20)
    with pytest.raises(ModelError, match="needs 3 tokens"):
        dec.step(torch.tensor([1, 2]))
    with pytest.raises(ModelError, match="outside the vocabulary"):
        dec.step(torch.tensor([1, 2, model.cfg.vocab_size]))
    for rows in ([0, 0], [3], [-1]):
        with pytest.raises(ModelError, match="distinct live rows"):
            dec.keep(rows)
    assert dec.n == 3 and dec.length == 6  # nothing moved
    dec.keep([])  # every sample finished: no live rows until an admit (continuous batching)
    assert dec.n == 0 and dec.free_rows == 3


def test_batch_buckets() -> None:
    assert [batch_bucket(n, 1000) for n in (1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 200)] == [
        1, 2, 4, 4, 8, 8, 16, 16, 32, 32, 48, 208,
    ]  # fmt: skip
    assert batch_bucket(3, 3) == 3 and batch_bucket(17, 20) == 20


def test_graphs_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GRAPHS_ENV, raising=False)
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    assert graphs_enabled() and decode_kernel_enabled()  # the default since their GPU tests passed
    monkeypatch.setenv(GRAPHS_ENV, "0")
    monkeypatch.setenv(KERNEL_ENV, "0")
    assert not graphs_enabled() and not decode_kernel_enabled()
    monkeypatch.setenv(GRAPHS_ENV, "1")
    assert graphs_enabled()
    monkeypatch.setenv(GRAPHS_ENV, "0")
    dec = StaticDecoder(_model(), torch.arange(4), 1)
    assert not dec.graphed  # CPU never captures


def test_model_and_generation_open_the_static_decoder() -> None:
    model = _model()
    prompt = torch.arange(12)
    dec = model.open_decoder(prompt, 2, capacity=30)
    assert isinstance(dec, StaticDecoder) and dec.capacity == 30
    dec = generation.open_decoder(model, prompt, 2, budget=7)
    assert isinstance(dec, StaticDecoder) and dec.capacity == 12 + 7
    assert generation.open_decoder(model, prompt, 2).capacity == model.cfg.max_position_embeddings  # 12 + 256 capped

    class NoCapacity:  # HfBackend's kind: a cache that grows, so capacity is accepted and ignored
        def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> str:
            return f"opened {n}"

    opened = generation.open_decoder(NoCapacity(), prompt, 2, budget=7)  # type: ignore[arg-type]
    assert opened == "opened 2"


# ----------------------------------------------------------------------------------------------------- GPU


def _gpu_config() -> Starcoder2Config:
    return tiny_config(
        vocab_size=1024,
        hidden_size=256,
        intermediate_size=1024,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        sliding_window=8,
    )


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("mode", ["bf16", "int8", "nf4", "fp8"])
def test_graph_step_equals_eager_step_and_recomputation_on_gpu(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability 8.9+")
    cfg = _gpu_config()
    model = NativeStarcoder2.random(cfg, device="cuda", seed=0, quant=mode, attn="flash")
    g = torch.Generator().manual_seed(11)
    prompt = _tokens(cfg.vocab_size, 8, g)
    monkeypatch.setenv(GRAPHS_ENV, "0")
    eager = StaticDecoder(model, prompt, 3, capacity=40)
    monkeypatch.setenv(GRAPHS_ENV, "1")
    graphed = StaticDecoder(model, prompt, 3, capacity=40)
    assert graphed.graphed and not eager.graphed
    seqs = [prompt.clone() for _ in range(3)]
    worst_eager = worst_ref = 0.0
    for step in range(24):  # past the window (8); sequences stay <= 32 tokens (see below)
        if step == 8:
            for dec in (graphed, eager):
                dec.keep([0, 2])
            seqs = [seqs[0], seqs[2]]
        if step == 16:
            for dec in (graphed, eager):
                dec.keep([1])
            seqs = [seqs[1]]
        tok = _tokens(cfg.vocab_size, len(seqs), g)
        seqs = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(seqs)]
        a, b = graphed.step(tok), eager.step(tok)
        worst_eager = max(worst_eager, rel(a, b))
        # one sequence per call: <= 32 rows, so quantized linears take the same small-M path as decode
        ref = torch.cat([model.next_token_logits([s]) for s in seqs])
        worst_ref = max(worst_ref, rel(a, ref))
    print(f"{mode}: graph vs eager {worst_eager:.2e}, graph vs recompute {worst_ref:.2e}, captures {graphed.captures}")
    assert graphed.graphed and graphed.captures == 3  # batch 3, then 2, then 1
    # bf16 runs cuBLAS and our attention: a replay is bitwise the eager step. The quantized small-M kernels split K
    # and add the partial sums atomically, so the summation order (and the last bits) differ from run to run, and
    # 30 random layers amplify that to ~4e-3 (seen for int8 on the H100): bounded like the recomputation
    assert worst_eager <= (1e-6 if mode == "bf16" else 2e-2)
    assert worst_ref <= 2e-2


@pytest.mark.gpu
@gpu
def test_a_step_after_capture_allocates_nothing_new() -> None:
    cfg = _gpu_config()
    model = NativeStarcoder2.random(cfg, device="cuda", seed=0, quant="bf16", attn="flash")
    g = torch.Generator().manual_seed(12)
    dec = StaticDecoder(model, _tokens(cfg.vocab_size, 20, g), 4, capacity=80)
    tok = _tokens(cfg.vocab_size, 4, g)
    for _ in range(3):  # the first step warms up and captures
        dec.step(tok)
    assert dec.graphed and dec.captures == 1
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()
    allocated, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    steps = 10
    for _ in range(steps):
        out = dec.step(tok)
        del out
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    assert torch.cuda.memory_allocated() == allocated
    assert torch.cuda.memory_reserved() == reserved
    # at most one allocation per step: the clone of the static logits handed back
    assert after["allocation.all.allocated"] - before["allocation.all.allocated"] <= steps
    assert dec.captures == 1


@pytest.mark.parametrize("attn", _attn_params())
def test_retired_rows_are_holes_that_admit_fills(attn: str) -> None:
    """Continuous batching's rows: retire() frees rows without moving the others (their steps still equal
    recomputation), admit() fills the holes first, lowest first, then rows past n; trailing holes shrink n; a hole
    cannot be kept or retired again."""
    model = _model(attn=attn, seed=3)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(4)
    prompts = [_tokens(vocab, 8, g), _tokens(vocab, 5, g), _tokens(vocab, 11, g)]
    dec = StaticDecoder(model, [prompts[0]], [4], capacity=40, slots=6)
    seqs: dict[int, torch.Tensor] = {r: prompts[0].clone() for r in range(4)}

    def step() -> None:
        tok = _tokens(vocab, dec.n, g)
        logits = dec.step(tok)
        for r in seqs:
            seqs[r] = torch.cat([seqs[r], tok[r : r + 1]])
        for r, s in seqs.items():
            assert rel(logits[r : r + 1], _recompute(model, [s])) <= TOL, r

    step()
    dec.retire([1, 2])
    del seqs[1], seqs[2]
    assert dec.n == 4 and dec.holes == {1, 2} and dec.free_rows == 4 and dec.lengths == [9, 0, 0, 9]
    step()
    rows, first = dec.admit([prompts[1], prompts[2]], [1, 2])
    assert rows == [1, 2, 4] and dec.n == 5 and dec.holes == set() and dec.free_rows == 1
    expected = torch.cat([_recompute(model, [prompts[1]]), _recompute(model, [prompts[2]]).expand(2, -1)])
    assert rel(first, expected) <= TOL
    seqs.update({1: prompts[1].clone(), 2: prompts[2].clone(), 4: prompts[2].clone()})
    step()
    dec.retire([4, 3])  # the trailing holes go: n shrinks to 3
    del seqs[4], seqs[3]
    assert dec.n == 3 and dec.holes == set() and dec.free_rows == 3
    step()
    dec.retire([0])
    del seqs[0]
    for bad in ([0], [3], [1, 1]):
        with pytest.raises(ModelError, match="distinct live rows"):
            dec.retire(bad)
    with pytest.raises(ModelError, match="distinct live rows"):
        dec.keep([0, 1])
    dec.keep([2, 1])  # compacts and clears the holes
    seqs = {0: seqs[2], 1: seqs[1]}
    assert dec.n == 2 and dec.holes == set()
    step()


def test_prefill_scatter_in_small_parts_gives_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefill's keys and values reach their rows in parts (decoding._SCATTER_BYTES bounds the gathered keys):
    parts of a few positions, across prompts and into scattered holes, leave every row as recomputation has it."""
    import evalpipe_engine.decoding as decoding

    model = _model(seed=5)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(6)
    prompts = [_tokens(vocab, 7, g), _tokens(vocab, 4, g), _tokens(vocab, 9, g)]
    element = model.cfg.num_key_value_heads * model.cfg.head_dim * torch.empty((), dtype=model.act_dtype).element_size()
    monkeypatch.setattr(decoding, "_SCATTER_BYTES", 3 * element)  # three positions per part
    dec = StaticDecoder(model, prompts[:2], [2, 3], capacity=30, slots=8)
    dec.retire([1, 3])
    rows, _ = dec.admit([prompts[2]], [3])
    assert rows == [1, 3, 5]
    seqs = {0: prompts[0], 2: prompts[1], 4: prompts[1], 1: prompts[2], 3: prompts[2], 5: prompts[2]}
    tok = _tokens(vocab, dec.n, g)
    logits = dec.step(tok)
    for r, s in seqs.items():
        assert rel(logits[r : r + 1], _recompute(model, [torch.cat([s, tok[r : r + 1]])])) <= TOL, r


def test_equal_prompts_are_prefilled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples of one prompt admitted as separate units (each its own budget) share one prefill: the packed
    forward sees each distinct prompt once, and every row continues its prompt as recomputation has it."""
    model = _model(seed=7)
    vocab = model.cfg.vocab_size
    g = torch.Generator().manual_seed(8)
    a, b = _tokens(vocab, 6, g), _tokens(vocab, 9, g)
    packed_counts: list[int] = []
    pack = model.pack

    def counted_pack(sequences: list[torch.Tensor], **kw: object) -> object:
        packed_counts.append(len(sequences))
        return pack(sequences, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(model, "pack", counted_pack)
    dec = StaticDecoder(model, [a, b, a.clone(), a.clone()], [1, 2, 1, 1], capacity=30, slots=8)
    assert packed_counts == [2]
    expected = torch.cat(
        [_recompute(model, [a]), _recompute(model, [b]).expand(2, -1), _recompute(model, [a]).expand(2, -1)]
    )
    assert rel(dec.first_logits, expected) <= TOL
    seqs = {0: a, 1: b, 2: b, 3: a, 4: a}
    tok = _tokens(vocab, dec.n, g)
    logits = dec.step(tok)
    for r, s in seqs.items():
        assert rel(logits[r : r + 1], _recompute(model, [torch.cat([s, tok[r : r + 1]])])) <= TOL, r


@pytest.mark.parametrize("quant", ["bf16", "fp32"])
def test_logits_dtype_is_the_heads_and_exact(quant: str) -> None:
    """`logits_dtype` (what the sampler sorts on) is the head's dtype, and every float32 logit the decoder returns,
    first and after a step, is exactly a value of it."""
    model = NativeStarcoder2.random(tiny_config(), device="cpu", seed=3, quant=quant, attn="sdpa")
    g = torch.Generator().manual_seed(4)
    dec = StaticDecoder(model, [_tokens(model.cfg.vocab_size, 5, g)], [2], capacity=12)
    assert dec.logits_dtype == (torch.bfloat16 if quant == "bf16" else torch.float32)
    for logits in (dec.first_logits, dec.step(_tokens(model.cfg.vocab_size, 2, g))):
        assert logits.dtype == torch.float32
        assert torch.equal(logits.to(dec.logits_dtype).float(), logits)
