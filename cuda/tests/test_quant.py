"""Quantized formats and build_linear on CPU: number formats, error bounds, reference paths, bad input."""

from __future__ import annotations

import pytest
import torch

from evalpipe_engine.quant import QUANT_MODES, QuantError, QuantOptions, activation_dtype, build_linear
from evalpipe_engine.quant.fp8 import fp8_support_error, quantize_fp8
from evalpipe_engine.quant.int8 import dequantize_int8, quantize_int8
from evalpipe_engine.quant.nf4 import (
    NF4_CODE,
    dequantize_nf4,
    double_dequantize,
    double_quantize,
    quantize_nf4,
    unpack_indices,
)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_nf4_codebook_is_the_qlora_one() -> None:
    code = torch.tensor(NF4_CODE)
    assert code.numel() == 16 and code[0] == -1.0 and code[15] == 1.0 and code[7] == 0.0
    assert torch.all(code[1:] > code[:-1])
    assert code[:7].numel() == 7 and code[8:].numel() == 8  # 7 negative, zero, 8 positive: asymmetric


def test_nf4_round_trips_every_code_and_packs_high_nibble_first() -> None:
    code = torch.tensor(NF4_CODE)
    idx = torch.arange(16).repeat(8)  # 128 = two blocks of 64
    w = (code[idx] * 3.0).view(2, 64)
    qw = quantize_nf4(w)
    assert torch.equal(unpack_indices(qw.packed).view(-1), idx)
    assert qw.packed[0, 0].item() == (0 << 4) | 1
    assert torch.allclose(qw.absmax, torch.full((2, 1), 3.0))
    assert torch.allclose(dequantize_nf4(qw.packed, qw.absmax, 64), w)


@pytest.mark.parametrize("k", [64, 100, 257])
def test_nf4_error_and_padding(k: int) -> None:
    w = torch.randn(33, k, generator=torch.Generator().manual_seed(k))
    qw = quantize_nf4(w)
    kp = -(-k // 64) * 64
    assert qw.packed.shape == (33, kp // 2) and qw.absmax.shape == (33, kp // 64)
    deq = dequantize_nf4(qw.packed, qw.absmax, k)
    assert deq.shape == (33, k)
    assert rel(deq, w) < 0.12  # 4-bit on Gaussian weights: about 0.09
    # every element is at the nearest code value of its block
    blocks = torch.nn.functional.pad(w, (0, kp - k)).view(33, -1, 64) / qw.absmax[:, :, None]
    nearest = (blocks[..., None] - torch.tensor(NF4_CODE)).abs().argmin(dim=-1).view(33, kp)
    assert torch.equal(unpack_indices(qw.packed)[:, :k], nearest[:, :k])


def test_nf4_zero_block_stays_zero() -> None:
    w = torch.zeros(2, 128)
    w[1, 64:] = torch.linspace(-1, 1, 64)
    deq = dequantize_nf4(*(lambda q: (q.packed, q.absmax))(quantize_nf4(w)), 128)
    assert torch.equal(deq[0], torch.zeros(128)) and torch.equal(deq[1, :64], torch.zeros(64))


def test_double_quant_is_close_and_smaller() -> None:
    absmax = torch.rand(300, 48, generator=torch.Generator().manual_seed(1)) + 0.5
    q, s, off = double_quantize(absmax)
    back = double_dequantize(q, s, off)
    assert q.dtype == torch.int8 and s.numel() == -(-absmax.numel() // 256)
    assert (back - absmax).abs().max().item() <= s.max().item() / 2 + 1e-6


def test_int8_per_channel() -> None:
    w = torch.randn(40, 300, generator=torch.Generator().manual_seed(2))
    w[3] *= 100  # one loud channel must not hurt the others
    q, s = quantize_int8(w)
    assert q.dtype == torch.int8 and q.abs().max().item() == 127
    assert torch.allclose(s, w.abs().amax(dim=1) / 127)
    err = (dequantize_int8(q, s) - w).abs()
    assert torch.all(err <= s[:, None] / 2 + 1e-6)


def test_fp8_per_channel() -> None:
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(3))
    q, s = quantize_fp8(w)
    assert q.dtype == torch.float8_e4m3fn and q.float().abs().max().item() == 448.0
    assert rel(q.float() * s[:, None], w) < 0.05


@pytest.mark.parametrize("mode", ["int8", "nf4", "fp8"])
@pytest.mark.parametrize("m", [1, 40])
def test_build_linear_cpu_reference_path(mode: str, m: int) -> None:
    g = torch.Generator().manual_seed(m)
    w, b = torch.randn(48, 96, generator=g) * 0.05, torch.randn(48, generator=g)
    lin = build_linear(w, b, mode, torch.float32, name="t")
    x = torch.randn(2, m, 96, generator=g)
    y = lin(x)
    assert y.shape == (2, m, 48) and y.dtype == torch.float32
    exact = x @ w.T + b
    assert rel(y, exact) < {"int8": 0.02, "fp8": 0.08, "nf4": 0.15}[mode]
    assert rel(y.reshape(-1, 48), x.reshape(-1, 96) @ lin.dequantized_weight().T + b) < (
        {"fp8": 0.06, "int8": 0.02}.get(mode, 1e-5) if m > 32 else 1e-5  # prefill W8A8 quantizes activations too
    )


def test_int8_w8a8_and_outliers_on_cpu() -> None:
    g = torch.Generator().manual_seed(5)
    w = torch.randn(64, 128, generator=g) * 0.05
    x = torch.randn(100, 128, generator=g)
    x[:, 7] *= 40  # an outlier feature, as LLM.int8 finds in large models
    exact = x @ w.T
    plain = build_linear(w, None, "int8", torch.float32, options=QuantOptions(int8_prefill="w8a8"))
    split = build_linear(
        w, None, "int8", torch.float32, options=QuantOptions(int8_prefill="w8a8", int8_outlier_threshold=6.0)
    )
    assert rel(split(x), exact) < rel(plain(x), exact) / 2


def test_weight_bytes() -> None:
    w = torch.randn(256, 512)
    dense = build_linear(w, None, "bf16", torch.bfloat16)
    dense_bytes = sum(p.numel() * p.element_size() for p in dense.parameters())
    i8 = build_linear(w, None, "int8", torch.bfloat16)
    n4 = build_linear(w, None, "nf4", torch.bfloat16)
    n4dq = build_linear(w, None, "nf4", torch.bfloat16, options=QuantOptions(nf4_double_quant=True))
    assert i8.weight_bytes() / dense_bytes <= 0.51
    assert n4.weight_bytes() / dense_bytes <= 0.29
    assert n4dq.weight_bytes() < n4.weight_bytes()


def test_unknown_mode_and_compute_dtype() -> None:
    w = torch.randn(8, 64)
    with pytest.raises(QuantError, match=r"unknown quant mode 'int4'.*fp32, fp16, bf16, int8, nf4, fp8"):
        build_linear(w, None, "int4", torch.bfloat16)
    with pytest.raises(QuantError, match=r"compute dtype torch.int8 .*\(tensor layer.q\)"):
        build_linear(w, None, "nf4", torch.int8, name="layer.q")
    with pytest.raises(QuantError, match="unknown compute dtype 'fp64'"):
        activation_dtype("nf4", "fp64", torch.device("cpu"))
    assert set(QUANT_MODES) == {"fp32", "fp16", "bf16", "int8", "nf4", "fp8"}


def test_bad_weights_name_the_tensor() -> None:
    with pytest.raises(QuantError, match=r"layers.3.mlp.c_fc.*2-D"):
        build_linear(torch.randn(4, 4, 4), None, "int8", torch.float32, name="layers.3.mlp.c_fc")
    bad = torch.randn(8, 64)
    bad[1, 2] = float("nan")
    with pytest.raises(QuantError, match=r"head.*NaN"):
        build_linear(bad, None, "nf4", torch.float32, name="head")
    with pytest.raises(QuantError, match="bias of o_proj"):
        build_linear(torch.randn(8, 64), torch.randn(7), "fp8", torch.float32, name="o_proj")
    lin = build_linear(torch.randn(8, 64), None, "int8", torch.float32, name="o_proj")
    with pytest.raises(QuantError, match="o_proj expects 64 input features, got 63"):
        lin(torch.randn(2, 63))


def test_bad_options() -> None:
    with pytest.raises(QuantError, match="int8 prefill strategy 'fast'"):
        QuantOptions(int8_prefill="fast")
    with pytest.raises(QuantError, match="outlier threshold"):
        QuantOptions(int8_outlier_threshold=0.0)


def test_fp8_card_check_names_the_card() -> None:
    assert fp8_support_error("NVIDIA H100 80GB HBM3", (9, 0)) is None
    assert fp8_support_error("NVIDIA L4", (8, 9)) is None
    msg = fp8_support_error("NVIDIA A100-SXM4-80GB", (8, 0))
    assert msg is not None and "A100" in msg and "8.0" in msg and "int8" in msg


@pytest.mark.parametrize("mode", ["int8", "nf4", "fp8"])
def test_forward_gelu_is_gelu_of_forward(mode: str) -> None:
    g = torch.Generator().manual_seed(9)
    w, b = torch.randn(32, 64, generator=g) * 0.1, torch.randn(32, generator=g)
    lin = build_linear(w, b, mode, torch.float32)
    x = torch.randn(3, 50, 64, generator=g)
    assert torch.allclose(lin.forward_gelu(x), torch.nn.functional.gelu(lin(x), approximate="tanh"))
