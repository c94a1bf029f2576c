"""The deterministic (batch-invariant) mode: a row's log-probs and a sample's logits and tokens are bitwise the same
whatever else shares its pack or batch and whatever the batch size (invariant.py).

CPU tests run the native model on the tiny preset in every precision; the invariant Triton matmuls run in the
interpreter (`test_interpreted_invariant_kernels`) and, on a GPU, compiled on fresh shapes, then whole models.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from _interpreter import assert_interpreted_tests_pass

from evalpipe_engine.errors import Unsupported
from evalpipe_engine.generation import generate
from evalpipe_engine.loading import LoadedModel, load_model

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available()
interpreted = pytest.mark.skipif(not INTERPRET, reason="runs inside the TRITON_INTERPRET=1 child")
QUANTS = ["fp32", "bf16", "fp16", "int8", "nf4", "fp8"]


def _load(quant: str, attn: str = "sdpa", device: str = "cpu", deterministic: bool | None = None) -> LoadedModel:
    params: dict[str, Any] = {"model": "preset:tiny-starcoder2", "device": device, "quant": quant, "attn": attn}
    if deterministic is not None:
        params["deterministic"] = deterministic
    return load_model(params)


def _sequences(loaded: LoadedModel, count: int, seed: int, longest: int = 300) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, longest, (count,), generator=g)
    return [torch.randint(0, loaded.facts.vocab_size, (int(n),), generator=g) for n in lengths]


def _assert_rows_invariant(loaded: LoadedModel, seqs: list[torch.Tensor]) -> None:
    backend = loaded.backend
    alone = [backend.target_logprobs([s])[0] for s in seqs]
    packed = backend.target_logprobs(seqs)
    reversed_pack = backend.target_logprobs(seqs[::-1])[::-1]
    for i, (a, b, c) in enumerate(zip(alone, packed, reversed_pack, strict=True)):
        assert torch.equal(a, b), f"row {i} ({len(seqs[i])} tokens): packed log-probs differ from alone"
        assert torch.equal(a, c), f"row {i}: log-probs differ with the pack reversed"


def _completions(loaded: LoadedModel, prompts: list[str], rows: int, temperature: float) -> dict[tuple[str, int], Any]:
    out: list[dict[str, Any]] = []
    params = {
        "requests": [{"key": f"p{i}", "prompt": p} for i, p in enumerate(prompts)],
        "n": 1 if temperature == 0 else 2,
        "temperature": temperature,
        "max_new_tokens": 24,
        "seed": 3,
        "max_batch_rows": rows,
        "stop": [],
    }
    generate(loaded, params, lambda event, data: out.append(data) if event == "partial" else None)
    return {(d["key"], d["sample_index"]): (d["completion"], d["n_new_tokens"]) for d in out}


PROMPTS = [f"def f{i}(x):\n    " + "y = x + 1\n    " * (i % 5) for i in range(17)]


# ----------------------------------------------------------------------------------------------- CPU, native model


def test_cpu_default_is_deterministic_and_the_fast_path_is_not_batch_invariant() -> None:
    assert _load("fp32").deterministic
    fast = _load("fp32", deterministic=False)
    assert not fast.deterministic
    # the reason the mode exists: MKL sums a row differently when it shares the product with other rows
    seqs = _sequences(fast, 12, seed=1)
    alone = [fast.backend.target_logprobs([s])[0] for s in seqs]
    packed = fast.backend.target_logprobs(seqs)
    assert any(not torch.equal(a, b) for a, b in zip(alone, packed, strict=True))


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_cpu_scored_rows_do_not_depend_on_their_pack(quant: str, attn: str) -> None:
    loaded = _load(quant, attn)
    _assert_rows_invariant(loaded, _sequences(loaded, 10, seed=2))


@pytest.mark.parametrize("quant", ["fp32", "bf16", "int8", "nf4"])
def test_cpu_decoder_logits_do_not_depend_on_the_batch(quant: str) -> None:
    """Each prompt decoded alone and in one batch with the others (different lengths, rows leaving as they end):
    the first logits and every step's logits are bitwise equal."""
    loaded = _load(quant)
    model: Any = loaded.backend
    prompts = _sequences(loaded, 5, seed=4, longest=90)
    steps = 12
    tokens = [
        torch.randint(0, loaded.facts.vocab_size, (steps,), generator=torch.Generator().manual_seed(i))
        for i in range(5)
    ]

    def alone(i: int) -> list[torch.Tensor]:
        dec = model.open_batch_decoder([prompts[i]], [1], capacity=len(prompts[i]) + steps + 1)
        out = [dec.first_logits[0]]
        for t in range(steps - 2 * (i % 2)):
            out.append(dec.step(tokens[i][t : t + 1])[0])
        return out

    dec = model.open_batch_decoder(prompts, [1] * 5, capacity=max(len(p) for p in prompts) + steps + 7)
    together = {i: [dec.first_logits[i]] for i in range(5)}
    live = list(range(5))
    for t in range(steps):
        if t == steps - 2:  # odd prompts leave early: the batch shrinks to the even ones
            live = [i for i in live if i % 2 == 0]
            dec.keep([r for r, i in enumerate(range(5)) if i % 2 == 0])
        logits = dec.step(torch.stack([tokens[i][t] for i in live]))
        for r, i in enumerate(live):
            together[i].append(logits[r])
    for i in range(5):
        ref = alone(i)
        assert len(ref) == len(together[i])
        for t, (a, b) in enumerate(zip(ref, together[i], strict=True)):
            assert torch.equal(a, b), f"prompt {i} step {t}: logits differ between batch 1 and batch 5"


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_cpu_generation_is_the_same_at_batch_sizes_1_3_and_16(temperature: float) -> None:
    loaded = _load("fp32")
    ref = _completions(loaded, PROMPTS, 1, temperature)
    assert len(ref) == len(PROMPTS) * (1 if temperature == 0 else 2)
    for rows in (3, 16):
        assert _completions(loaded, PROMPTS, rows, temperature) == ref, f"batch {rows} changed a completion"


def test_deterministic_on_hf_transformers_is_a_clear_error(preset_dir: Path, tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "llama")
    shutil.copy(preset_dir / "tokenizer.json", tmp_path / "llama" / "tokenizer.json")
    # Llama runs natively by default now; backend hf asks for HF transformers' own Llama
    params: dict[str, Any] = {"model": str(tmp_path / "llama"), "device": "cpu", "quant": "fp32", "backend": "hf"}
    assert load_model(params).deterministic is False  # not asked for: off, and the load result says so
    with pytest.raises(Unsupported, match="cannot guarantee batch-invariant results"):
        load_model({**params, "deterministic": True})


# ---------------------------------------------------------------------------------- kernels in the interpreter


@pytest.mark.skipif(INTERPRET or CUDA, reason="this is the parent; on a GPU the gpu tests run instead")
def test_interpreted_invariant_kernels() -> None:
    assert_interpreted_tests_pass(__file__)


def _check_matmul_rows_invariant(
    kernel: Any, device: str, dtype: torch.dtype, k: int, n: int, ms: list[int], weight_dtype: torch.dtype | None = None
) -> None:
    """Against the fp64 product, then: the first rows' bits stay the same whatever M and the other rows. With
    `weight_dtype` (int8 / fp8) the weight is stored in it with a per-channel fp32 scale."""
    g = torch.Generator(device=device).manual_seed(5)
    x = torch.randn(max(ms), k, device=device, generator=g).to(dtype)
    w = (torch.randn(n, k, device=device, generator=g) / k**0.5).to(dtype)
    b = torch.randn(n, device=device, generator=g).to(dtype)
    scale = None
    if weight_dtype is not None:
        scale = (w.float().abs().amax(dim=1) / 127).clamp_min(1e-8)
        q = (w.float() / scale[:, None]).round().clamp(-127, 127)
        w = q.to(weight_dtype)
        wd = w.float().double() * scale.double()[:, None]  # what the weight holds (fp8 rounds the integers)
    else:
        wd = w.double()
    ref = (x.double() @ wd.T + b.double()).float()
    first = kernel(x[: ms[0]], w, b, scale)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    err = ((first.float() - ref[: ms[0]]).norm() / ref[: ms[0]].norm()).item()
    assert err < tol, f"relative error {err} against the fp64 product"
    for m in ms[1:]:
        shuffled = torch.cat([x[: ms[0]], torch.randn(m - ms[0], k, device=device, generator=g).to(dtype)])
        y = kernel(shuffled, w, b, scale)
        assert torch.equal(y[: ms[0]], first), f"M = {m} changed the first {ms[0]} rows' bits"


@interpreted
def test_interp_invariant_matmul_rows_split() -> None:
    from evalpipe_engine.kernels.invariant_matmul import matmul_rows_split

    _check_matmul_rows_invariant(matmul_rows_split, "cpu", torch.float32, k=600, n=40, ms=[3, 5, 17, 34])
    _check_matmul_rows_invariant(matmul_rows_split, "cpu", torch.float32, 600, 24, [2, 9, 20], weight_dtype=torch.int8)


# --------------------------------------------------------------------------------------------------------- GPU


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize(("k", "n"), [(3072, 3072), (3072, 12288), (1000, 4000)])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_invariant_matmul_rows(dtype: torch.dtype, split: bool, k: int, n: int) -> None:
    """The CUDA products of the deterministic mode: the split-K kernel (8-bit decode) and the fixed-shape cuBLAS
    chunks (prefill rows, decode rows), each with rows whose bits do not move with M."""
    from evalpipe_engine.invariant import DECODE_ROWS, PREFILL_ROWS, decode_phase, invariant_linear
    from evalpipe_engine.kernels.invariant_matmul import matmul_rows_split

    def chunked(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        if split:
            with decode_phase():
                return invariant_linear(x, w, b, scale)
        return invariant_linear(x, w, b, scale)

    ms = [1, 7, 64, 300] if split else [1, 129, 1000, 4099]
    assert max(ms) > (DECODE_ROWS if split else PREFILL_ROWS)  # several chunks, a padded last one
    _check_matmul_rows_invariant(chunked, "cuda", dtype, k, n, ms)
    if dtype != torch.float32:  # the int8 / fp8 weights of the quantized modes: converted in the split kernel
        for weight_dtype in (torch.int8, torch.float8_e4m3fn):
            _check_matmul_rows_invariant(chunked, "cuda", dtype, k, n, ms, weight_dtype=weight_dtype)
            if split:
                _check_matmul_rows_invariant(matmul_rows_split, "cuda", dtype, k, n, ms, weight_dtype=weight_dtype)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("attn", ["flash", "sdpa"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_scored_rows_and_decode_do_not_depend_on_the_batch(quant: str, attn: str) -> None:
    loaded = _load(quant, attn, device="cuda", deterministic=True)
    assert loaded.deterministic
    _assert_rows_invariant(loaded, _sequences(loaded, 10, seed=6, longest=500))
    ref = _completions(loaded, PROMPTS, 1, 0.0)
    for rows in (3, 16):
        assert _completions(loaded, PROMPTS, rows, 0.0) == ref, f"{quant}/{attn}: batch {rows} changed a completion"


def test_the_engine_runs_mkl_with_conditional_numerical_reproducibility() -> None:
    """Importing the engine asks MKL (before torch loads it) for strict CNR and no dynamic threading; MKL_VERBOSE
    shows the mode of each call it makes ("CNR:OFF Dyn:1" is MKL's own default)."""
    import subprocess
    import sys

    script = "import evalpipe_engine, torch; torch.randn(64, 64) @ torch.randn(64, 64)"
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    env["MKL_VERBOSE"] = "1"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    calls = [line for line in out.stdout.splitlines() if "SGEMM" in line]
    if not calls:
        pytest.skip("this torch build does not use MKL for fp32 matmuls")
    assert all("CNR:AUTO,STRICT" in line and "Dyn:0" in line for line in calls), calls
