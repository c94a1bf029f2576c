"""The model's small Triton kernels (fused residual add + LayerNorm, in-place RoPE) through Triton's interpreter on
CPU against PyTorch, and on the GPU bit for bit against HF's bf16 rounding steps. (Triton's interpreter does not
round float32 -> bfloat16 to nearest, so on CPU bf16 is checked to a tolerance and float32 exactly.)"""

from __future__ import annotations

import pytest
import torch
from _interpreter import run_interpreted

_INTERPRETED = """
import torch
import torch.nn.functional as F
from evalpipe_engine.kernels.add_layernorm import add_layernorm_
from evalpipe_engine.kernels.rope import apply_rope_
from evalpipe_engine.rope import RopeTables, apply_rope_reference
g = torch.Generator().manual_seed(0)
for dt, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
    x = torch.randn(9, 48, generator=g).to(dt)
    y = torch.randn(9, 48, generator=g).to(dt)
    w = (1 + 0.1 * torch.randn(48, generator=g)).to(dt)
    b = (0.1 * torch.randn(48, generator=g)).to(dt)
    ref_x = x + y
    ref_h = F.layer_norm(ref_x, (48,), w, b, 1e-5)
    h = add_layernorm_(x, y, w, b, 1e-5)
    assert torch.allclose(x.float(), ref_x.float(), rtol=tol, atol=tol), "residual sum differs"
    err = float((h.float() - ref_h.float()).norm() / ref_h.float().norm())
    assert err < tol, (dt, err)
    tables = RopeTables(16, 10000.0, 64, torch.device("cpu"))
    q = torch.randn(20, 5, 16, generator=g).to(dt)
    pos = torch.randint(0, 64, (20,), generator=g, dtype=torch.int32)
    ref = apply_rope_reference(q[:, :3], pos.long(), tables)
    apply_rope_(q, pos, tables.cos, tables.sin, 3)
    rope_err = float((q[:, :3].float() - ref.float()).norm() / ref.float().norm())
    assert rope_err < tol, ("rope differs", dt, rope_err)
    print("ok", dt)
"""


def test_small_kernels_in_interpreter() -> None:
    res = run_interpreted(["-c", _INTERPRETED], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("ok") == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_small_kernels_bitwise_on_gpu() -> None:
    import torch.nn.functional as F

    from evalpipe_engine.kernels.add_layernorm import add_layernorm_
    from evalpipe_engine.rope import RopeTables, apply_rope_inplace, apply_rope_reference

    g = torch.Generator(device="cuda").manual_seed(0)
    for c in (3072, 4608, 6144):
        x = torch.randn(4099, c, generator=g, device="cuda", dtype=torch.bfloat16)
        y = torch.randn(4099, c, generator=g, device="cuda", dtype=torch.bfloat16)
        w = 1 + 0.1 * torch.randn(c, generator=g, device="cuda", dtype=torch.bfloat16)
        b = 0.1 * torch.randn(c, generator=g, device="cuda", dtype=torch.bfloat16)
        ref_x = x + y
        ref_h = F.layer_norm(ref_x, (c,), w, b, 1e-5)
        h = add_layernorm_(x, y, w, b, 1e-5)
        assert torch.equal(x, ref_x)
        assert float((h.float() - ref_h.float()).norm() / ref_h.float().norm()) < 4e-3  # bf16 output rounding
    tables = RopeTables(128, 1e5, 16384, torch.device("cuda"))
    q = torch.randn(5000, 30, 128, generator=g, device="cuda", dtype=torch.bfloat16)
    pos = torch.randint(0, 16384, (5000,), generator=g, device="cuda", dtype=torch.int32)
    ref = apply_rope_reference(q[:, :26], pos.long(), tables)
    apply_rope_inplace(q, pos, tables, 26)
    # HF's rounding steps; Triton's conversions may differ from PyTorch's by one bf16 ulp on a few elements
    assert float((q[:, :26].float() - ref.float()).norm() / ref.float().norm()) < 5e-3  # measured 2.2e-3
