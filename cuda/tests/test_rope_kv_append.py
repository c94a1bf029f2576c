"""The decode step's fused RoPE + cache append (kernels/rope.py rope_kv_append_) against the reference: queries
rotated in place like apply_rope_reference, each row's rotated key and its value written at that row's position of
the caches, nothing else touched. Through Triton's interpreter on CPU (CI runs the suite with TRITON_INTERPRET=1),
for real on the GPU with StarCoder2-3B's head layout."""

from __future__ import annotations

import os

import pytest
import torch

from evalpipe_engine.rope import RopeTables, apply_rope_reference

CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def _check(device: str, dtype: torch.dtype, hq: int, hkv: int, d: int, cap: int, positions: list[int]) -> None:
    from evalpipe_engine.kernels.rope import rope_kv_append_

    g = torch.Generator(device=device).manual_seed(3)
    rows = len(positions)
    tables = RopeTables(d, 999999.4420358813, cap, torch.device(device))
    qkv = torch.randn(rows, hq + 2 * hkv, d, generator=g, device=device).to(dtype)
    pos = torch.tensor(positions, device=device)
    # caches with two spare rows past the live ones (a decoder's cache has more rows than a bucket uses)
    kc = torch.randn(rows + 2, hkv, cap, d, generator=g, device=device).to(dtype)
    vc = torch.randn(rows + 2, hkv, cap, d, generator=g, device=device).to(dtype)
    k0, v0, qkv0 = kc.clone(), vc.clone(), qkv.clone()

    rope_kv_append_(qkv, pos, tables.cos, tables.sin, kc[:rows], vc[:rows], hq)

    want_q = apply_rope_reference(qkv0[:, :hq], pos, tables)
    want_k, want_v = k0.clone(), v0.clone()
    rotated_k = apply_rope_reference(qkv0[:, hq : hq + hkv], pos, tables)
    for r, p in enumerate(positions):
        want_k[r, :, p] = rotated_k[r]
        want_v[r, :, p] = qkv0[r, hq + hkv :]
    tol = 1e-6 if dtype == torch.float32 else 1e-2  # 16-bit: rounding of each product (HF's steps)
    assert _rel(qkv[:, :hq], want_q) < tol
    assert torch.equal(qkv[:, hq:], qkv0[:, hq:]), "keys and values in qkv are inputs only"
    assert _rel(kc, want_k) < tol
    assert torch.equal(kc[rows:], k0[rows:]) and torch.equal(vc, want_v)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.skipif(not INTERPRETED, reason="the interpreter case runs with TRITON_INTERPRET=1 (as CI does)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_kv_append_interp(dtype: torch.dtype) -> None:
    _check("cpu", dtype, hq=4, hkv=2, d=16, cap=24, positions=[0, 5, 23, 5])


def test_rejects_a_cache_that_does_not_match() -> None:
    from evalpipe_engine.kernels.rope import rope_kv_append_

    qkv = torch.zeros(2, 8, 16)
    kc = torch.zeros(2, 3, 10, 16)  # 3 kv heads, qkv holds 2
    tables = RopeTables(16, 10000.0, 10, torch.device("cpu"))
    with pytest.raises(ValueError, match="does not match the cache"):
        rope_kv_append_(qkv, torch.zeros(2, dtype=torch.long), tables.cos, tables.sin, kc, kc.clone(), 4)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_rope_kv_append_gpu_full_size(dtype: torch.dtype) -> None:
    positions = torch.randint(0, 16384, (37,), generator=torch.Generator().manual_seed(5)).tolist()
    _check("cuda", dtype, hq=24, hkv=2, d=128, cap=16384, positions=positions)
