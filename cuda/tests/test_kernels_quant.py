"""The quant kernels against their references (dequantize, then matmul in fp32).

On CPU the Triton interpreter runs them on small shapes: the interpreter is chosen when triton is first imported,
so `test_interpreted_kernels` re-runs this file in a child process with TRITON_INTERPRET=1. On a GPU the
`gpu`-marked tests run the compiled kernels on fresh random shapes, sizes that are not multiples of any tile.
"""

from __future__ import annotations

import os

import pytest
import torch
from _interpreter import assert_interpreted_tests_pass

from evalpipe_engine.quant import QuantOptions, build_linear
from evalpipe_engine.quant.int8 import dequantize_int8, quantize_int8
from evalpipe_engine.quant.nf4 import dequantize_nf4, nf4_code, quantize_nf4

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available()
interpreted = pytest.mark.skipif(not INTERPRET, reason="runs inside test_interpreted_kernels' TRITON_INTERPRET=1 child")
gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")]


def rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    assert torch.isfinite(y).all(), "kernel output holds NaN/inf (an unwritten or wrong element)"
    return ((y.float() - ref.float()).norm() / ref.float().norm()).item()


def tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-2


@pytest.mark.skipif(INTERPRET or CUDA, reason="this is the parent; on a GPU the gpu tests run instead")
def test_interpreted_kernels() -> None:
    assert_interpreted_tests_pass(__file__)


# ---------------------------------------------------------------- interpreter (CPU) tests


@interpreted
@pytest.mark.parametrize("m", [1, 3, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interp_int8_smallm(m: int, dtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.quant_smallm import w8_smallm_linear

    g = torch.Generator().manual_seed(m)
    w, b = torch.randn(37, 100, generator=g), torch.randn(37, generator=g)
    q, s = quantize_int8(w)
    x = torch.randn(m, 100, generator=g).to(dtype)
    y = w8_smallm_linear(x, q, s, b)
    assert y.dtype == dtype and y.shape == (m, 37)
    assert rel(y, x.float() @ dequantize_int8(q, s).T + b) < tol(dtype)


@interpreted
@pytest.mark.parametrize("m", [1, 5])
def test_interp_fp8_smallm(m: int) -> None:
    from evalpipe_engine.kernels.quant_smallm import w8_smallm_linear
    from evalpipe_engine.quant.fp8 import quantize_fp8

    g = torch.Generator().manual_seed(10 + m)
    w = torch.randn(24, 48, generator=g)
    q, s = quantize_fp8(w)
    x = torch.randn(m, 48, generator=g)
    try:
        y = w8_smallm_linear(x, q, s, None)
    except Exception as e:  # the CPU interpreter may lack fp8 loads; then this path is covered on the GPU only
        pytest.skip(f"interpreter cannot run fp8 weights: {type(e).__name__}")
    assert rel(y, x @ (q.float() * s[:, None]).T) < 1e-5


@interpreted
@pytest.mark.parametrize("m", [1, 4, 19])
@pytest.mark.parametrize("k", [64, 100, 130])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interp_nf4_smallm(m: int, k: int, dtype: torch.dtype) -> None:
    from evalpipe_engine.kernels.nf4_smallm import nf4_smallm_linear

    g = torch.Generator().manual_seed(m * k)
    w, b = torch.randn(21, k, generator=g), torch.randn(21, generator=g)
    qw = quantize_nf4(w)
    x = torch.randn(m, k, generator=g).to(dtype)
    y = nf4_smallm_linear(x, qw.packed, qw.absmax, nf4_code(), b)
    assert rel(y, x.float() @ dequantize_nf4(qw.packed, qw.absmax, k).T + b) < tol(dtype)


@interpreted
@pytest.mark.parametrize("k", [64, 100, 200])
def test_interp_nf4_dequant(k: int) -> None:
    from evalpipe_engine.kernels.nf4_dequant import nf4_dequantize

    w = torch.randn(9, k, generator=torch.Generator().manual_seed(k))
    qw = quantize_nf4(w)
    full = torch.full((9, k), float("nan"))
    out = nf4_dequantize(qw.packed, qw.absmax, nf4_code(), k, torch.float32)
    full.copy_(out)
    assert torch.equal(full, dequantize_nf4(qw.packed, qw.absmax, k))


@interpreted
def test_interp_int8_dequant() -> None:
    from evalpipe_engine.kernels.int8_dequant import int8_dequantize

    w = torch.randn(19, 77, generator=torch.Generator().manual_seed(3))
    q, s = quantize_int8(w)
    assert torch.equal(int8_dequantize(q, s, torch.float32), dequantize_int8(q, s))


@interpreted
@pytest.mark.parametrize("k", [31, 100])
def test_interp_quantize_rows(k: int) -> None:
    from evalpipe_engine.kernels.quant_act import quantize_rows, quantize_rows_reference

    x = torch.randn(13, k, generator=torch.Generator().manual_seed(k)) * 3
    x[5] = 0.0
    q, s = quantize_rows(x, torch.int8)
    qr, sr = quantize_rows_reference(x, torch.int8)
    assert torch.equal(q, qr) and torch.allclose(s, sr)
    assert s[5].item() == 1.0 and (q[5] == 0).all()
    assert rel(q.float() * s, x) < 0.01


@interpreted
@pytest.mark.parametrize(("m", "n", "k"), [(40, 37, 100), (17, 16, 33)])
def test_interp_w8a8(m: int, n: int, k: int) -> None:
    from evalpipe_engine.kernels.int8_gemm import w8a8_linear
    from evalpipe_engine.kernels.quant_act import quantize_rows_reference

    g = torch.Generator().manual_seed(m + n + k)
    w, b, x = torch.randn(n, k, generator=g), torch.randn(n, generator=g), torch.randn(m, k, generator=g)
    q, s = quantize_int8(w)
    qx, sx = quantize_rows_reference(x, torch.int8)
    y = w8a8_linear(qx, sx, q, s, b, torch.float32)
    ref = (qx.float() @ q.float().T) * sx * s[None, :] + b
    assert rel(y, ref) < 1e-6


# ---------------------------------------------------------------- GPU tests


def _gpu_case(mode: str, act: torch.dtype, opts: QuantOptions, n: int, k: int, m: int, seed: int) -> float:
    g = torch.Generator(device="cuda").manual_seed(seed)
    w = torch.randn((n, k), generator=g, device="cuda").to(torch.bfloat16)
    b = torch.randn((n,), generator=g, device="cuda").to(torch.bfloat16)
    lin = build_linear(w, b, mode, act, name=f"test.{mode}", options=opts)
    x = torch.randn((m, k), generator=g, device="cuda").to(act)
    y = lin(x)
    assert y.dtype == act and y.shape == (m, n)
    return rel(y, lin.reference2d(x))


def _fresh_shapes(seed: int, count: int, mult: int = 1) -> list[tuple[int, int]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (int(torch.randint(17, 700, (1,), generator=g)) * mult, int(torch.randint(17, 900, (1,), generator=g)) * mult)
        for _ in range(count)
    ]


@pytest.mark.parametrize("m", [1, 7, 32, 300])
@pytest.mark.parametrize(
    ("mode", "act", "opts"),
    [
        ("int8", torch.bfloat16, QuantOptions()),
        ("int8", torch.bfloat16, QuantOptions(int8_prefill="dequant")),
        ("int8", torch.float16, QuantOptions(int8_prefill="w8a8", int8_outlier_threshold=2.5)),
        ("int8", torch.float32, QuantOptions(int8_prefill="dequant", fp32_matmul="ieee")),
        ("int8", torch.float32, QuantOptions(int8_prefill="dequant", fp32_matmul="tf32")),
        ("nf4", torch.bfloat16, QuantOptions()),
        ("nf4", torch.float32, QuantOptions(fp32_matmul="ieee")),
        ("nf4", torch.float32, QuantOptions(fp32_matmul="tf32")),
        ("nf4", torch.bfloat16, QuantOptions(nf4_double_quant=True)),
        ("nf4", torch.bfloat16, QuantOptions(nf4_small_m_dot=True)),
    ],
)
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_kernels_match_reference(m: int, mode: str, act: torch.dtype, opts: QuantOptions) -> None:
    seed = int(torch.randint(0, 2**31 - 1, (1,)))  # fresh shapes and data on every run
    for n, k in _fresh_shapes(seed, 2):
        err = _gpu_case(mode, act, opts, n, k, m, seed)
        limit = 5e-3 if act == torch.float32 and opts.fp32_matmul == "tf32" else tol(act)
        assert err < limit, f"{mode} {act} {opts} M={m} N={n} K={k} seed={seed}: rel err {err}"


@pytest.mark.parametrize("m", [1, 5, 32, 48, 500])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_fp8_matches_reference(m: int) -> None:
    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    for n, k in _fresh_shapes(seed, 2, mult=16):
        err = _gpu_case("fp8", torch.bfloat16, QuantOptions(), n, k, m, seed)
        assert err < 2e-2, f"fp8 M={m} N={n} K={k} seed={seed}: rel err {err}"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_dequant_kernels_exact() -> None:
    from evalpipe_engine.kernels.int8_dequant import int8_dequantize
    from evalpipe_engine.kernels.nf4_dequant import nf4_dequantize

    g = torch.Generator(device="cuda").manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
    for n, k in [(333, 700), (64, 64), (1000, 130)]:
        w = torch.randn((n, k), generator=g, device="cuda")
        q, s = quantize_int8(w)
        assert torch.equal(int8_dequantize(q, s, torch.float32), dequantize_int8(q, s))
        qw = quantize_nf4(w)
        got = nf4_dequantize(qw.packed, qw.absmax, nf4_code("cuda"), k, torch.float32)
        assert torch.equal(got, dequantize_nf4(qw.packed, qw.absmax, k))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_quantize_rows_matches_reference() -> None:
    from evalpipe_engine.kernels.quant_act import quantize_rows, quantize_rows_reference

    x = torch.randn((300, 3000), device="cuda").to(torch.bfloat16) * 4
    q, s = quantize_rows(x, torch.int8)
    qr, sr = quantize_rows_reference(x, torch.int8)
    assert torch.allclose(s, sr) and (q.int() - qr.int()).abs().max().item() <= 1
    q8, s8 = quantize_rows(x, torch.float8_e4m3fn)
    qr8, sr8 = quantize_rows_reference(x, torch.float8_e4m3fn)
    assert torch.allclose(s8, sr8)
    assert rel(q8.float(), qr8.float()) < 1e-2


@pytest.mark.parametrize("mode", ["int8", "nf4", "fp8"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_forward_gelu(mode: str) -> None:
    g = torch.Generator(device="cuda").manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
    w = torch.randn((384, 256), generator=g, device="cuda")
    b = torch.randn((384,), generator=g, device="cuda")
    lin = build_linear(w, b, mode, torch.bfloat16)
    for m in (1, 300):
        x = torch.randn((m, 256), generator=g, device="cuda").to(torch.bfloat16)
        ref = torch.nn.functional.gelu(lin.reference2d(x), approximate="tanh")
        assert rel(lin.forward_gelu(x), ref) < 2e-2
