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
    assert len(gemv_cuda.KERNEL_NAMES) == 3 * per_act == len(set(gemv_cuda.KERNEL_NAMES))
    for name in gemv_cuda.KERNEL_NAMES:
        assert f"void __launch_bounds__(THREADS) {name}(" in gemv_cuda.SOURCE


def test_declines_on_cpu() -> None:
    x = torch.randn(1, 32)
    w = torch.randint(-127, 127, (16, 32), dtype=torch.int8)
    assert gemv_cuda.gemv("int8", x, w, torch.ones(16), None) is None


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


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["int8", "fp8", "nf4"])
def test_gpu_linear_uses_it_and_graph_capture_replays(mode: str) -> None:
    """The module's one-row forward goes through the CUDA kernel and is captured by a CUDA graph."""
    lin = _linear(mode, 3072, 3072, torch.bfloat16, bias=True, seed=7)
    x = torch.randn(1, 3072, device="cuda", dtype=torch.bfloat16)
    eager = lin(x)
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        lin(static_x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = lin(static_x)
    fresh = torch.randn(1, 3072, device="cuda", dtype=torch.bfloat16)
    static_x.copy_(fresh)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_y, lin(fresh))
    assert _relative_error(eager, lin.reference2d(x)) < 8e-3
    assert _relative_error(static_y, lin.reference2d(fresh)) < 8e-3
