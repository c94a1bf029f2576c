"""The run-time-compiled CUDA C++ decode GEMV (kernels/gemv_cuda.py) against the fp32 reference of each quantized
linear (dequantize, then matmul), on the GPU: every variant of the kernel (rows per block x unroll), bf16/fp16/fp32
activations, shapes that are not multiples of the tile (and for nf4 not of the 64-block), with and without bias.
On CPU it checks only that the CUDA source is well formed enough to be generated and that `gemv` declines."""

from __future__ import annotations

import pytest
import torch

from evalpipe_engine.kernels import gemv_cuda
from evalpipe_engine.quant import QuantOptions, build_linear

CUDA = torch.cuda.is_available()
gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")]
SHAPES = [(3584, 3072), (3072, 12288), (1000, 1008), (17, 48), (4099, 4096)]
NF4_SHAPES = [*SHAPES, (300, 200), (5, 70)]
# Fp8Linear refuses, by design, weights whose sides are not multiples of 16 (torch._scaled_mm's rule for prefill);
# these are multiples of 16 but not of the GEMV's row tile or K unroll
FP8_SHAPES = [(3584, 3072), (3072, 12288), (4112, 4096), (48, 1040), (1008, 1008)]


@pytest.fixture(autouse=True)
def _rtc_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels are on by default; these tests say so explicitly (a developer's shell may have turned them off)."""
    monkeypatch.setenv("EVALPIPE_CUDA_RTC", "1")


def test_source_has_one_kernel_per_format_activation_and_variant() -> None:
    per_act = 2 * len(gemv_cuda.W8_VARIANTS) + len(gemv_cuda.NF4_VARIANTS)
    dense = 2 * len(gemv_cuda.DENSE_VARIANTS)  # bf16 and fp16 weights; fp32 stays with cuBLAS
    assert len(gemv_cuda.KERNEL_NAMES) == 3 * per_act + dense == len(set(gemv_cuda.KERNEL_NAMES))
    for name in gemv_cuda.KERNEL_NAMES:
        assert f"void __launch_bounds__(THREADS) {name}(" in gemv_cuda.SOURCE


def test_declines_on_cpu() -> None:
    x = torch.randn(1, 32)
    w = torch.randint(-127, 127, (16, 32), dtype=torch.int8)
    assert gemv_cuda.gemv("int8", x, w, torch.ones(16), None) is None
    xb = x.to(torch.bfloat16)
    assert gemv_cuda.gemv("dense", xb, torch.randn(16, 32, dtype=torch.bfloat16), None, None) is None


def test_dense_linear_and_gelu_on_cpu_are_the_plain_functions() -> None:
    """Off CUDA the dense linear is F.linear and its fused GELU is GELU after it, bit for bit."""
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(24, 32, generator=g), torch.randn(24, generator=g)
    lin = build_linear(w, b, "bf16", torch.bfloat16, name="test.cpu")
    x = torch.randn(1, 32, generator=g).to(torch.bfloat16)
    plain = torch.nn.functional.linear(x, lin.weight, lin.bias)
    assert torch.equal(lin(x), plain)
    assert torch.equal(lin.forward_gelu(x), torch.nn.functional.gelu(plain, approximate="tanh"))


def _relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.float() - ref).norm() / ref.norm())


def _linear(mode: str, n: int, k: int, act: torch.dtype, bias: bool, seed: int) -> torch.nn.Module:
    g = torch.Generator(device="cuda").manual_seed(seed)
    w = torch.randn(n, k, device="cuda", generator=g) * 0.02
    b = torch.randn(n, device="cuda", generator=g) * 0.1 if bias else None
    return build_linear(w, b, mode, act, name=f"test.{mode}", options=QuantOptions())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["int8", "fp8", "nf4"])
@pytest.mark.parametrize("act", [torch.bfloat16, torch.float16, torch.float32])
def test_gpu_every_variant_matches_reference(mode: str, act: torch.dtype) -> None:
    kernels = gemv_cuda._kernels(torch.device("cuda"))
    assert kernels is not None, "NVRTC build failed; see stderr"
    shapes = {"nf4": NF4_SHAPES, "fp8": FP8_SHAPES}.get(mode, SHAPES)
    tol = 2e-3 if act == torch.float32 else 8e-3
    for i, (n, k) in enumerate(shapes):
        lin = _linear(mode, n, k, act, bias=i % 2 == 0, seed=100 + i)
        x = torch.randn(1, k, device="cuda", generator=torch.Generator(device="cuda").manual_seed(i)).to(act)
        ref = lin.reference2d(x)
        for variant in gemv_cuda.variants_for(mode):
            gemv_cuda._choice.clear()
            gemv_cuda._choice[(mode, gemv_cuda._ACTS[act][0], n, k, x.device.index)] = variant
            if mode == "nf4":
                y = gemv_cuda.gemv("nf4", x, lin.packed, lin.absmax(), lin.bias, code=lin.code, k=k)
            else:
                y = gemv_cuda.gemv(mode, x, lin.qweight, lin.scale, lin.bias)
            assert y is not None, f"{mode} {n}x{k} declined"
            assert y.dtype == act and y.shape == (1, n)
            assert torch.isfinite(y).all()
            err = _relative_error(y, ref)
            assert err < tol, f"{mode} {act} {n}x{k} (rows, unroll, table)={variant}: rel err {err:.2e}"
    gemv_cuda._choice.clear()


def _replayed_on_fresh_input(lin: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lin's one-row forward captured in a CUDA graph (after a warm-up on a side stream, where the GEMV's variant is
    timed), then replayed on a fresh input: (the graph's output, that input)."""
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        lin(static_x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = lin(static_x)
    fresh = torch.randn(x.shape, device=x.device, dtype=x.dtype)
    static_x.copy_(fresh)
    graph.replay()
    torch.cuda.synchronize()
    return static_y, fresh


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["int8", "fp8", "nf4"])
def test_gpu_linear_uses_it_and_graph_capture_replays(mode: str) -> None:
    """The module's one-row forward goes through the CUDA kernel and is captured by a CUDA graph."""
    lin = _linear(mode, 3072, 3072, torch.bfloat16, bias=True, seed=7)
    x = torch.randn(1, 3072, device="cuda", dtype=torch.bfloat16)
    eager = lin(x)
    static_y, fresh = _replayed_on_fresh_input(lin, x)
    assert torch.equal(static_y, lin(fresh))
    assert _relative_error(eager, lin.reference2d(x)) < 8e-3
    assert _relative_error(static_y, lin.reference2d(fresh)) < 8e-3


DENSE_SHAPES = [(3584, 3072), (3072, 12288), (12288, 3072), (49152, 3072), (1000, 1008), (17, 48), (4099, 4096)]


def _gelu_ref(y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(y, approximate="tanh")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("act", [torch.bfloat16, torch.float16])
def test_gpu_dense_every_variant_matches_reference(act: torch.dtype) -> None:
    """The dense GEMV (weights in the activation dtype) against the fp32 product of the same weights, every
    variant, with and without bias, with and without the GELU epilogue."""
    kernels = gemv_cuda._kernels(torch.device("cuda"))
    assert kernels is not None, "NVRTC build failed; see stderr"
    for i, (n, k) in enumerate(DENSE_SHAPES):
        g = torch.Generator(device="cuda").manual_seed(200 + i)
        w = (torch.randn(n, k, device="cuda", generator=g) * 0.02).to(act)
        b = (torch.randn(n, device="cuda", generator=g) * 0.1).to(act) if i % 2 == 0 else None
        x = torch.randn(1, k, device="cuda", generator=g).to(act)
        ref = x.float() @ w.float().T + (0 if b is None else b.float())
        for variant in gemv_cuda.variants_for("dense"):
            gemv_cuda._choice.clear()
            gemv_cuda._choice[("dense", gemv_cuda._ACTS[act][0], n, k, x.device.index)] = variant
            for gelu in (False, True):
                y = gemv_cuda.gemv("dense", x, w, None, b, gelu=gelu)
                assert y is not None, f"dense {n}x{k} declined"
                assert y.dtype == act and y.shape == (1, n)
                want = _gelu_ref(ref) if gelu else ref
                err = _relative_error(y, want)
                assert err < 8e-3, f"dense {act} {n}x{k} gelu={gelu} (rows, unroll)={variant}: rel err {err:.2e}"
    gemv_cuda._choice.clear()


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_dense_declines_what_it_cannot_run() -> None:
    w = torch.randn(64, 48, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(1, 48, device="cuda", dtype=torch.bfloat16)
    assert gemv_cuda.gemv("dense", x.float(), w.float(), None, None) is None  # fp32 stays with cuBLAS
    assert gemv_cuda.gemv("dense", x, w.half(), None, None) is None  # weight and activation dtypes differ
    assert gemv_cuda.gemv("dense", x[:, :44], w[:, :44].contiguous(), None, None) is None  # K % 8
    assert gemv_cuda.gemv("dense", x, w.t().contiguous().t(), None, None) is None  # not row-major
    assert gemv_cuda.gemv("dense", torch.cat([x, x]), w, None, None) is None  # two rows: cuBLAS
    assert gemv_cuda.gemv("dense", x, w, None, None, rtc=False) is None  # the switch is off


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["int8", "fp8", "nf4", "bf16", "fp16"])
def test_gpu_one_row_gelu_is_fused_and_matches(mode: str) -> None:
    """forward_gelu of one row (the c_fc of a decode step at batch 1) runs in the GEMV's epilogue: the result is
    GELU of the fp32 reference within the GEMV's tolerance, and with the fast path switched off (cuBLAS / Triton,
    then GELU) the same within that tolerance."""
    act = torch.float16 if mode == "fp16" else torch.bfloat16
    lin = _linear(mode, 12288, 3072, act, bias=True, seed=11)
    x = torch.randn(1, 3072, device="cuda", generator=torch.Generator(device="cuda").manual_seed(5)).to(act)
    dense = mode in ("bf16", "fp16")
    ref = x.float() @ lin.weight.float().T + lin.bias.float() if dense else lin.reference2d(x)
    fused = lin.forward_gelu(x)
    assert fused.shape == (1, 12288) and fused.dtype == act
    assert _relative_error(fused, _gelu_ref(ref)) < 8e-3
    lin.cuda_rtc = False
    unfused = lin.forward_gelu(x)
    assert _relative_error(unfused, _gelu_ref(ref)) < 8e-3
    lin.cuda_rtc = None
    assert _relative_error(lin(x), ref) < 8e-3


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_dense_linear_uses_it_and_graph_capture_replays() -> None:
    lin = _linear("bf16", 3072, 3072, torch.bfloat16, bias=True, seed=8)
    x = torch.randn(1, 3072, device="cuda", dtype=torch.bfloat16)
    static_y, fresh = _replayed_on_fresh_input(lin, x)
    assert torch.equal(static_y, lin(fresh))
    ref = fresh.float() @ lin.weight.float().T + lin.bias.float()
    assert _relative_error(static_y, ref) < 8e-3
    lin.cuda_rtc = False
    assert _relative_error(lin(fresh), ref) < 8e-3  # cuBLAS agrees within the tolerance
