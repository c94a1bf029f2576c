"""Per-token quantization fused into add+LayerNorm and GELU (kernels/fused_quant.py), Fp8Linear's pre-quantized
input, and the fp8 model's prefill that uses both (model.py `_add_norm`, `_mlp`).

CPU: the Triton interpreter runs the kernels on small odd shapes; the interpreter is chosen when triton is first
imported, so `test_interpreted_fused_kernels` re-runs this file's `interp` tests in a TRITON_INTERPRET=1 child.
Triton 3.8's interpreter does not convert like the GPU: fp32 -> bf16 truncates, and fp32 -> e4m3 rounds half up
without carrying into the exponent (127.25 -> 64). So on CPU the kernels are held bit for bit to the unfused kernels
(add_layernorm_ + quantize_rows) run in the same interpreter, in every dtype, and to the PyTorch references with
fp32 activations and int8 output; bf16 and fp8 against PyTorch's conversions are GPU tests.

GPU (`gpu` mark): the kernels on fresh random full-size shapes (M = 8192, K = 3072 and 12288, bf16) against the
unfused kernels and the references; forward_quantized against forward; the fp8 model's fused prefill against its
unfused path (EVALPIPE_FP8_FUSED=0; the fusion is on by default), and decode untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _interpreter import assert_interpreted_tests_pass
from _native_helpers import tiny_config

from evalpipe_engine.kernels.quant_act import quantize_rows_reference
from evalpipe_engine.model import NativeStarcoder2, Starcoder2Config
from evalpipe_engine.quant import QuantError, build_linear
from evalpipe_engine.quant.fp8 import FP8_DTYPE, FUSED_ENV, Fp8Linear, QuantizedRows

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available()
interpreted = pytest.mark.skipif(not INTERPRET, reason="runs inside test_interpreted_fused_kernels' child")
QDTYPES = [torch.int8, FP8_DTYPE]


def rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    assert torch.isfinite(y).all(), "output holds NaN/inf"
    return ((y.float() - ref.float()).norm() / ref.float().norm()).item()


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def _ln_inputs(m: int, k: int, dtype: torch.dtype, seed: int, device: str = "cpu") -> list[torch.Tensor]:
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((m, k), generator=g, device=device) * 2
    y = torch.randn((m, k), generator=g, device=device)
    w = 1 + 0.1 * torch.randn((k,), generator=g, device=device)
    b = 0.1 * torch.randn((k,), generator=g, device=device)
    return [t.to(dtype) for t in (x, y, w, b)]


@pytest.mark.skipif(INTERPRET or CUDA, reason="this is the parent; on a GPU the gpu tests run instead")
def test_interpreted_fused_kernels() -> None:
    assert_interpreted_tests_pass(__file__)


# ---------------------------------------------------------------- interpreter (CPU) tests


@interpreted
@pytest.mark.parametrize("k", [33, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("qdtype", QDTYPES)
def test_interp_add_layernorm_quant_equals_unfused_kernels(k: int, dtype: torch.dtype, qdtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.add_layernorm import add_layernorm_
    from evalpipe_engine.kernels.fused_quant import add_layernorm_quant_rows
    from evalpipe_engine.kernels.quant_act import quantize_rows

    x, y, w, b = _ln_inputs(13, k, dtype, seed=k)
    x_fused, x_unfused = x.clone(), x.clone()
    q, s = add_layernorm_quant_rows(x_fused, y, w, b, 1e-5, qdtype)
    q_ref, s_ref = quantize_rows(add_layernorm_(x_unfused, y, w, b, 1e-5), qdtype)
    assert torch.equal(x_fused, x_unfused)  # the residual, updated in place
    assert q.shape == (13, k) and s.shape == (13, 1) and s.dtype == torch.float32
    assert same_bits(q, q_ref) and torch.equal(s, s_ref)


@interpreted
@pytest.mark.parametrize("k", [33, 100])
def test_interp_add_layernorm_quant_matches_reference(k: int) -> None:
    from evalpipe_engine.kernels.fused_quant import add_layernorm_quant_rows, add_layernorm_quant_rows_reference

    x, y, w, b = _ln_inputs(13, k, torch.float32, seed=7 * k)
    x[5], y[5], b[:] = 1.5, 0.25, 0.0  # a constant row: LayerNorm gives 0 there, so s = 1 and q = 0
    x_fused, x_ref = x.clone(), x.clone()
    q, s = add_layernorm_quant_rows(x_fused, y, w, b, 1e-5, torch.int8)
    q_ref, s_ref = add_layernorm_quant_rows_reference(x_ref, y, w, b, 1e-5, torch.int8)
    assert torch.equal(x_fused, x_ref) and torch.equal(x_fused, x + y)
    assert torch.allclose(s, s_ref, rtol=1e-6, atol=0)
    diff = (q.int() - q_ref.int()).abs()
    assert diff.max().item() <= 1 and (diff > 0).float().mean().item() < 0.01  # fp32 last-bit ties only
    assert s[5].item() == 1.0 and (q[5] == 0).all()
    h = F.layer_norm(x + y, (k,), w, b, 1e-5)
    assert rel(q.float() * s, h) < 0.01


@interpreted
@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # numpy's exp(-2u) for u << 0: inf, as intended
@pytest.mark.parametrize("k", [33, 100])
@pytest.mark.parametrize("qdtype", QDTYPES)
def test_interp_gelu_quant_matches_reference(k: int, qdtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.fused_quant import gelu_quant_rows, gelu_quant_rows_reference
    from evalpipe_engine.kernels.quant_act import quantize_rows

    h = torch.randn((13, k), generator=torch.Generator().manual_seed(k)) * 3
    h[2, :5] = torch.tensor([-40.0, -9.0, 0.0, 9.0, 40.0])  # exp(-2u) overflows: gelu -> -0, not NaN
    h[6] = -30.0  # gelu ~ 0 everywhere in this row
    q, s = gelu_quant_rows(h, qdtype)
    assert q.dtype == qdtype and torch.isfinite(q.float()).all() and torch.isfinite(s).all()
    if qdtype == torch.int8:  # PyTorch's rounding: compare with the reference
        q_ref, s_ref = gelu_quant_rows_reference(h, qdtype)
    else:  # the interpreter's e4m3 conversion: compare with quantize_rows in the same interpreter
        q_ref, s_ref = quantize_rows(F.gelu(h, approximate="tanh"), qdtype)
    assert torch.allclose(s, s_ref, rtol=1e-6, atol=0)
    mismatch = q.float() != q_ref.float()
    assert mismatch.float().mean().item() < 0.01  # GELU's fp32 last bits may flip a tie
    if qdtype == torch.int8:
        assert (q.int() - q_ref.int()).abs().max().item() <= 1


@interpreted
def test_interp_gelu_quant_bf16() -> None:
    from evalpipe_engine.kernels.fused_quant import gelu_quant_rows

    h = (torch.randn((9, 70), generator=torch.Generator().manual_seed(1)) * 3).to(torch.bfloat16)
    q, s = gelu_quant_rows(h, torch.int8)
    # the interpreter truncates to bf16, so only the function is checked here; the bits are on the GPU
    assert rel(q.float() * s, F.gelu(h.float(), approximate="tanh")) < 0.02


# ---------------------------------------------------------------- argument checks and Fp8Linear (CPU)


def test_fused_kernels_refuse_bad_arguments() -> None:
    from evalpipe_engine.kernels.fused_quant import add_layernorm_quant_rows, gelu_quant_rows

    x, y, w, b = _ln_inputs(4, 16, torch.float32, seed=0)
    with pytest.raises(ValueError, match="unsupported target dtype"):
        add_layernorm_quant_rows(x, y, w, b, 1e-5, torch.float16)
    with pytest.raises(ValueError, match="must be matching 2-D"):
        add_layernorm_quant_rows(x, y[:, :8], w, b, 1e-5, torch.int8)
    with pytest.raises(ValueError, match="unsupported target dtype"):
        gelu_quant_rows(x, torch.uint8)


def _fp8_linear(device: str, n: int = 48, k: int = 64, seed: int = 0) -> Fp8Linear:
    g = torch.Generator(device=device).manual_seed(seed)
    w = torch.randn((n, k), generator=g, device=device)
    b = torch.randn((n,), generator=g, device=device)
    lin = build_linear(w, b, "fp8", torch.bfloat16 if device == "cuda" else torch.float32)
    assert isinstance(lin, Fp8Linear)
    return lin


def test_forward_quantized_is_the_prefill_path_on_cpu() -> None:
    lin = _fp8_linear("cpu")
    x = torch.randn((40, 64), generator=torch.Generator().manual_seed(1))  # 40 > small_m_max: prefill
    q, s = quantize_rows_reference(x, FP8_DTYPE)
    rows = QuantizedRows(q, s, torch.float32)
    y = lin(x)
    assert torch.equal(lin.forward_quantized(rows), y)
    assert torch.equal(lin(rows), y)  # forward takes QuantizedRows too
    assert lin.forward_quantized(QuantizedRows(q[:0], s[:0], torch.float32)).shape == (0, 48)


def test_forward_quantized_refuses_wrong_rows() -> None:
    lin = _fp8_linear("cpu")
    x = torch.randn((40, 64))
    q8, s8 = quantize_rows_reference(x, torch.int8)
    with pytest.raises(QuantError, match="float8_e4m3fn"):
        lin.forward_quantized(QuantizedRows(q8, s8, torch.float32))
    q, s = quantize_rows_reference(x[:, :32], FP8_DTYPE)
    with pytest.raises(QuantError, match=r"\[M, 64\]"):
        lin.forward_quantized(QuantizedRows(q, s, torch.float32))


# ---------------------------------------------------------------- the model's prefill (CPU)


class _Spy:
    """Stands in for kernels.fused_quant's two kernels: counts calls and runs `impl` (a reference) or refuses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, use_references: bool) -> None:
        from evalpipe_engine.kernels import fused_quant

        self.calls = {"add_layernorm_quant_rows": 0, "gelu_quant_rows": 0}
        self.allowed = True
        for name in self.calls:
            impl = getattr(fused_quant, f"{name}_reference" if use_references else name)
            monkeypatch.setattr(fused_quant, name, self._wrap(name, impl))

    def _wrap(self, name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            assert self.allowed, f"{name} called where the path must not change (decode, small prefill, CPU)"
            self.calls[name] += 1
            return impl(*args)

        return call


@pytest.fixture(autouse=True)
def _fusion_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fusion is on by default; these tests say so explicitly (a developer's shell may have turned it off), and
    turn it off where they compare."""
    monkeypatch.setenv(FUSED_ENV, "1")


def _seqs(cfg: Starcoder2Config, lens: tuple[int, ...], seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in lens]


def test_cpu_fp8_prefill_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CPU the fp8 model runs its reference path: the fused kernels are never called and the switch changes
    nothing (the logits were also checked equal to the commit before the fusion)."""
    cfg = tiny_config()
    model = NativeStarcoder2.random(cfg, device="cpu", quant="fp8", seed=3)
    spy = _Spy(monkeypatch, use_references=True)
    spy.allowed = False
    seqs = _seqs(cfg, (50, 9, 40))
    lp = model.target_logprobs(seqs)
    logits = model.logits(seqs[0])
    monkeypatch.setenv(FUSED_ENV, "0")
    lp_off = model.target_logprobs(seqs)
    assert all(torch.equal(a, b) for a, b in zip(lp, lp_off, strict=True))
    assert torch.equal(model.logits(seqs[0]), logits)


def test_fused_prefill_wiring_equals_unfused_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused control flow of hidden_states/_mlp/_add_norm, forced on CPU with the kernels' PyTorch references
    in their place, computes exactly the unfused path's log-probs (on CPU both are fp32 reference math), calls
    add+LN+quant 2L-1 times and GELU+quant L times, and leaves decode steps alone."""
    cfg = tiny_config()
    model = NativeStarcoder2.random(cfg, device="cpu", quant="fp8", seed=5)
    seqs = _seqs(cfg, (60, 23))
    prompt = _seqs(cfg, (40,), seed=2)[0]
    lp_plain = model.target_logprobs(seqs)
    dec = model.open_decoder(prompt, 2)
    tok = torch.tensor([3, 4])
    steps_plain = [dec.step(tok) for _ in range(3)]

    spy = _Spy(monkeypatch, use_references=True)
    monkeypatch.setattr(
        model, "_fp8_input", lambda lin, rows: isinstance(lin, Fp8Linear) and rows > lin.options.small_m_max
    )
    lp_fused = model.target_logprobs(seqs)
    layers = cfg.num_hidden_layers
    assert spy.calls == {"add_layernorm_quant_rows": 2 * layers - 1, "gelu_quant_rows": layers}
    assert all(torch.equal(a, b) for a, b in zip(lp_fused, lp_plain, strict=True))

    dec = model.open_decoder(prompt, 2)  # a 40-token prompt: fused prefill
    spy.allowed = False  # ... but no step may take the fused path
    steps = [dec.step(tok) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(steps, steps_plain, strict=True))


# ---------------------------------------------------------------- GPU tests


def _fresh_seed() -> int:
    return int(torch.randint(0, 2**31 - 1, (1,)))


def _compare_q(
    q: torch.Tensor, s: torch.Tensor, q_ref: torch.Tensor, s_ref: torch.Tensor, what: str
) -> tuple[float, float]:
    """Fraction of codes that differ and the largest relative scale difference; asserts the fused kernel is the
    reference up to rare last-bit ties (a bf16 rounding flip can move the row max by 2^-8, hence the scale bound)."""
    mismatch = (q.float() != q_ref.float()).float().mean().item()
    ds = ((s - s_ref).abs() / s_ref).max().item()
    print(f"[{what}] codes differing {mismatch:.2e}, max scale rel diff {ds:.2e}")
    assert ds <= 2**-7, what
    assert mismatch <= 1e-3, what
    if q.dtype == torch.int8:
        assert (q.int() - q_ref.int()).abs().max().item() <= 1, what
    assert rel(q.float() * s, q_ref.float() * s_ref) < 1e-2, what
    return mismatch, ds


@pytest.mark.parametrize("k", [3072, 12288])
@pytest.mark.parametrize("qdtype", QDTYPES)
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_add_layernorm_quant_full_size(k: int, qdtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.add_layernorm import add_layernorm_
    from evalpipe_engine.kernels.fused_quant import add_layernorm_quant_rows, add_layernorm_quant_rows_reference
    from evalpipe_engine.kernels.quant_act import quantize_rows

    x, y, w, b = _ln_inputs(8192, k, torch.bfloat16, seed=_fresh_seed(), device="cuda")
    x_fused, x_unfused, x_ref = x.clone(), x.clone(), x.clone()
    q, s = add_layernorm_quant_rows(x_fused, y, w, b, 1e-5, qdtype)
    q_u, s_u = quantize_rows(add_layernorm_(x_unfused, y, w, b, 1e-5), qdtype)
    q_r, s_r = add_layernorm_quant_rows_reference(x_ref, y, w, b, 1e-5, qdtype)
    assert torch.equal(x_fused, x_unfused) and torch.equal(x_fused, x_ref)
    exact = same_bits(q, q_u) and torch.equal(s, s_u)
    print(f"[add+LN+quant K={k} {qdtype}] bit-identical to add_layernorm_ + quantize_rows: {exact}")
    _compare_q(q, s, q_u, s_u, f"add+LN+quant K={k} {qdtype} vs unfused kernels")
    _compare_q(q, s, q_r, s_r, f"add+LN+quant K={k} {qdtype} vs PyTorch reference")


@pytest.mark.parametrize("k", [3072, 12288])
@pytest.mark.parametrize("qdtype", QDTYPES)
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_gelu_quant_full_size(k: int, qdtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.fused_quant import gelu_quant_rows, gelu_quant_rows_reference
    from evalpipe_engine.kernels.quant_act import quantize_rows

    g = torch.Generator(device="cuda").manual_seed(_fresh_seed())
    h = (torch.randn((8192, k), generator=g, device="cuda") * 2).to(torch.bfloat16)
    h[7, :4] = torch.tensor([-40.0, -9.0, 9.0, 40.0], device="cuda")
    q, s = gelu_quant_rows(h, qdtype)
    q_u, s_u = quantize_rows(F.gelu(h, approximate="tanh"), qdtype)  # the unfused path: bf16 GELU, then quantize
    q_r, s_r = gelu_quant_rows_reference(h, qdtype)
    _compare_q(q, s, q_u, s_u, f"GELU+quant K={k} {qdtype} vs unfused")
    _compare_q(q, s, q_r, s_r, f"GELU+quant K={k} {qdtype} vs PyTorch reference")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_forward_quantized_equals_forward() -> None:
    from evalpipe_engine.kernels.quant_act import quantize_rows

    lin = _fp8_linear("cuda", n=384, k=256, seed=_fresh_seed())
    x = torch.randn((300, 256), device="cuda").to(torch.bfloat16)
    q, s = quantize_rows(x, FP8_DTYPE)
    assert torch.equal(lin(QuantizedRows(q, s, torch.bfloat16)), lin(x))
    y32 = lin.forward_quantized(QuantizedRows(q, s, torch.float32))
    assert y32.dtype == torch.float32 and torch.equal(y32, lin(x).float())


def _mid_config() -> Starcoder2Config:
    """Small, but with every fp8 GEMM size a multiple of 16 and wide enough that quantization error shows."""
    return tiny_config(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=1000,
        max_position_embeddings=1024,
        sliding_window=256,
    )


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_fp8_fused_prefill_matches_unfused(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _mid_config()
    seed = _fresh_seed()
    model = NativeStarcoder2.random(cfg, device="cuda", quant="fp8", seed=seed)
    seqs = _seqs(cfg, (400, 77, 300), seed=seed)
    spy = _Spy(monkeypatch, use_references=False)
    lp_fused = torch.cat(model.target_logprobs(seqs)).double()
    layers = cfg.num_hidden_layers
    assert spy.calls == {"add_layernorm_quant_rows": 2 * layers - 1, "gelu_quant_rows": layers}
    with monkeypatch.context() as mp:
        mp.setenv(FUSED_ENV, "0")
        spy.allowed = False
        lp_unfused = torch.cat(model.target_logprobs(seqs)).double()
        spy.allowed = True
    del model
    bf16 = NativeStarcoder2.random(cfg, device="cuda", quant="bf16", seed=seed)
    lp_bf16 = torch.cat(bf16.target_logprobs(seqs)).double()
    d_fused = (lp_fused - lp_unfused).abs()
    d_fp8 = (lp_unfused - lp_bf16).abs()
    print(
        f"\n[fp8 fused vs unfused] log-prob |diff| mean {d_fused.mean():.2e} max {d_fused.max():.2e}; "
        f"fp8 vs bf16 mean {d_fp8.mean():.2e} max {d_fp8.max():.2e}; bit-identical: {torch.equal(lp_fused, lp_unfused)}"
    )
    # the fusion changes the result far less than fp8 itself does (it computes the same function)
    assert d_fused.mean() <= 0.2 * d_fp8.mean() + 1e-5
    assert d_fused.max() <= d_fp8.max() + 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_fp8_decode_and_small_prefill_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _mid_config()
    model = NativeStarcoder2.random(cfg, device="cuda", quant="fp8", seed=_fresh_seed())
    spy = _Spy(monkeypatch, use_references=False)
    dec = model.open_decoder(_seqs(cfg, (40,))[0], 3)  # 40 prompt tokens > small_m_max: fused prefill
    assert spy.calls["gelu_quant_rows"] == cfg.num_hidden_layers
    spy.allowed = False  # decode steps (3 rows) and a prefill of <= small_m_max rows keep the unfused path
    for _ in range(3):
        assert torch.isfinite(dec.step(torch.tensor([1, 2, 3], device="cuda"))).all()
    model.target_logprobs(_seqs(cfg, (20, 12)))
