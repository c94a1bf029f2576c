"""Packed causal sliding-window GQA attention: the three backends agree with a float32 reference; our Triton
kernel runs through Triton's interpreter on CPU (tiny shapes) and for real on the GPU (full-size shapes)."""

from __future__ import annotations

import pytest
import torch
from _interpreter import run_interpreted

from evalpipe_engine.attention import packed_attention
from evalpipe_engine.kernels.flash_attention import flash_attention_reference

CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def _packed(lengths: list[int], hq: int, hkv: int, d: int, dtype: torch.dtype, device: str, seed: int):
    g = torch.Generator(device=device).manual_seed(seed)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=device)
    n = int(cu[-1])
    q = torch.randn(n, hq, d, generator=g, device=device, dtype=dtype)
    k = torch.randn(n, hkv, d, generator=g, device=device, dtype=dtype)
    v = torch.randn(n, hkv, d, generator=g, device=device, dtype=dtype)
    return q, k, v, cu


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("window", [None, 1, 7, 30])
def test_cpu_backends_match_reference(backend: str, window: int | None) -> None:
    lengths = [23, 1, 40, 8]
    q, k, v, cu = _packed(lengths, 6, 2, 16, torch.float32, "cpu", seed=11)
    out = packed_attention(q, k, v, cu, max(lengths), window, backend)
    ref = flash_attention_reference(q, k, v, cu, window)
    assert rel(out, ref) < 1e-6


_INTERPRETED = """
import torch
from evalpipe_engine.kernels.flash_attention import flash_attention, flash_attention_reference
g = torch.Generator().manual_seed(3)
for lengths, hq, hkv, d, window in [([37, 5, 64, 1, 50], 4, 2, 16, None), ([37, 5, 64, 1, 50], 4, 2, 16, 8),
                                     ([70, 33], 6, 3, 32, 17), ([48], 2, 1, 16, 100)]:
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)
    n = int(cu[-1])
    q, k, v = (torch.randn(n, h, d, generator=g) for h in (hq, hkv, hkv))
    out = torch.full_like(q, float("nan"))
    flash_attention(q, k, v, cu, max(lengths), window, out=out)
    ref = flash_attention_reference(q, k, v, cu, window)
    assert torch.isfinite(out).all(), "unwritten or NaN output"
    err = float((out - ref).norm() / ref.norm())
    assert err < 1e-5, (lengths, window, err)
    print("ok", lengths, window, err)
"""


def test_triton_kernel_in_interpreter() -> None:
    """The real kernel code, run by Triton's CPU interpreter (a subprocess: the flag must be set before import)."""
    res = run_interpreted(["-c", _INTERPRETED], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("ok") == 4


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize(
    ("lengths", "hq", "hkv", "d", "window"),
    [
        ([5000, 300, 4097, 1, 129], 24, 2, 128, 4096),  # StarCoder2-3B heads, past the window
        ([8192, 77], 36, 4, 128, 4096),  # 7B heads
        ([1000, 2000], 24, 2, 128, None),  # no window
        ([700, 3, 513], 8, 8, 64, 100),  # MHA, small window, d=64
    ],
)
def test_flash_kernel_gpu_matches_reference(lengths: list[int], hq: int, hkv: int, d: int, window: int | None):
    q, k, v, cu = _packed(lengths, hq, hkv, d, torch.bfloat16, "cuda", seed=sum(lengths))
    out = torch.full_like(q, float("nan"))
    from evalpipe_engine.kernels.flash_attention import flash_attention

    flash_attention(q, k, v, cu, max(lengths), window, out=out)
    ref = flash_attention_reference(q.double(), k.double(), v.double(), cu, window)
    assert torch.isfinite(out).all()
    assert rel(out, ref) < 1e-2  # bf16 operands
    # and against torch's own SDPA path on the same bf16 inputs
    sd = packed_attention(q, k, v, cu, max(lengths), window, "sdpa")
    assert rel(out, sd) < 1e-2


@pytest.mark.gpu
@gpu
def test_rope_kernel_gpu_matches_reference() -> None:
    from evalpipe_engine.rope import RopeTables, apply_rope_inplace, apply_rope_reference

    tables = RopeTables(128, 999999.4420358813, 16384, torch.device("cuda"))
    pos = torch.randint(0, 16384, (3000,), device="cuda", dtype=torch.int32)
    x = torch.randn(3000, 30, 128, device="cuda", dtype=torch.float32)
    ref = apply_rope_reference(x[:, :26].clone(), pos.long(), tables)
    y = x.clone()
    apply_rope_inplace(y, pos, tables, 26)
    assert rel(y[:, :26], ref) < 1e-6
    assert torch.equal(y[:, 26:], x[:, 26:])
