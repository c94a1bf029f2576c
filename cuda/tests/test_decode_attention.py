"""Flash-decoding kernel (kernels/decode_attention.py) against its float32 SDPA reference: through Triton's
interpreter on CPU (small shapes; these tests need TRITON_INTERPRET=1, as the suite is run) and for real on the
GPU (full-size StarCoder2-3B heads, and inside a CUDA graph with the length changed between replays)."""

from __future__ import annotations

import os

import pytest
import torch

from evalpipe_engine.kernels import decode_attention as da
from evalpipe_engine.kernels.decode_attention import (
    decode_attention,
    decode_attention_reference,
    default_num_splits,
)

CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
interpreted = pytest.mark.skipif(not INTERPRETED, reason="runs the kernel in Triton's interpreter: TRITON_INTERPRET=1")
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _inputs(n: int, hq: int, hkv: int, d: int, cap: int, dtype: torch.dtype, device: str, seed: int):
    g = torch.Generator(device=device).manual_seed(seed)
    q = torch.randn(n, hq, d, generator=g, device=device, dtype=torch.float32).to(dtype)
    k = torch.randn(n, hkv, cap, d, generator=g, device=device, dtype=torch.float32).to(dtype)
    v = torch.randn(n, hkv, cap, d, generator=g, device=device, dtype=torch.float32).to(dtype)
    return q, k, v


# (n, Hq, Hkv, D, capacity, length, window, num_splits); the interpreter's key block is 16
CASES = [
    (1, 4, 4, 16, 40, 1, None, None),  # group 1, a single valid position
    (2, 6, 2, 16, 40, 1, None, 4),  # group 3; length 1 with 4 splits: three splits are empty
    (3, 6, 2, 32, 50, 37, None, None),  # length not a multiple of the block
    (2, 3, 1, 32, 48, 48, None, 2),  # length == capacity; group 3 over one KV head
    (1, 8, 2, 16, 64, 64, None, 8),  # group 4, every split one block
    (2, 6, 2, 16, 64, 50, 7, None),  # window inside one block
    (3, 4, 2, 32, 80, 71, 33, 4),  # window across blocks and splits
    (2, 6, 3, 16, 40, 5, 16, 2),  # window wider than the length
    (1, 6, 2, 16, 40, 40, 40, 3),  # window == capacity (never bites); splits not a power of two
    (4, 2, 1, 16, 33, 20, None, 1),  # odd capacity, one split
]


@interpreted
@pytest.mark.parametrize(("n", "hq", "hkv", "d", "cap", "length", "window", "splits"), CASES)
def test_kernel_matches_reference_in_interpreter(
    n: int, hq: int, hkv: int, d: int, cap: int, length: int, window: int | None, splits: int | None
) -> None:
    q, k, v = _inputs(n, hq, hkv, d, cap, torch.float32, "cpu", seed=n * 100 + length)
    ln = torch.tensor([length], dtype=torch.int32)
    out = torch.full_like(q, float("nan"))
    decode_attention(q, k, v, ln, window, num_splits=splits, out=out)
    ref = decode_attention_reference(q, k, v, ln, window)
    assert torch.isfinite(out).all(), "unwritten or NaN output"
    assert rel(out, ref) < 1e-5


@interpreted
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_in_interpreter(dtype: torch.dtype) -> None:
    q, k, v = _inputs(2, 6, 2, 32, 64, dtype, "cpu", seed=7)
    for length, window in ((1, None), (45, None), (64, 20)):
        ln = torch.tensor([length], dtype=torch.int32)
        out = decode_attention(q, k, v, ln, window, num_splits=4)
        assert out.dtype == dtype and out.shape == q.shape
        # the interpreter truncates float32 -> 16-bit instead of rounding: a few 1e-3 relative
        assert rel(out, decode_attention_reference(q, k, v, ln, window)) < 1e-2


@interpreted
def test_strided_query_and_the_same_buffers_at_growing_lengths() -> None:
    """q read by strides out of a fused qkv buffer (as the decoder does); the length tensor changed in place
    between launches (as a graph replay sees it); int64 lengths accepted."""
    n, hq, hkv, d, cap = 2, 6, 2, 16, 48
    g = torch.Generator().manual_seed(3)
    qkv = torch.randn(n, hq + 2 * hkv, d, generator=g)
    q = qkv[:, :hq]
    _, k, v = _inputs(n, hq, hkv, d, cap, torch.float32, "cpu", seed=4)
    ln = torch.zeros(1, dtype=torch.int64)
    out = torch.empty(n, hq, d)
    for length in (1, 15, 16, 17, 33, 48):
        ln.fill_(length)
        decode_attention(q, k, v, ln, 20, num_splits=4, out=out)
        assert rel(out, decode_attention_reference(q, k, v, length, 20)) < 1e-5, length


@interpreted
@pytest.mark.parametrize("window", [None, 9])
def test_one_length_per_sample_in_interpreter(window: int | None) -> None:
    """Samples of different prompts decoded together: each row attends to its own first length[i] positions."""
    n, hq, hkv, d, cap = 4, 6, 2, 16, 48
    q, k, v = _inputs(n, hq, hkv, d, cap, torch.float32, "cpu", seed=21)
    lengths = torch.tensor([1, 17, 48, 30], dtype=torch.int32)
    out = torch.full_like(q, float("nan"))
    decode_attention(q, k, v, lengths, window, num_splits=4, out=out)
    assert torch.isfinite(out).all()
    for i, length in enumerate(lengths.tolist()):
        ref = decode_attention_reference(q[i : i + 1], k[i : i + 1], v[i : i + 1], length, window)
        assert rel(out[i : i + 1], ref) < 1e-5, (i, length)
    assert rel(out, decode_attention_reference(q, k, v, lengths, window)) < 1e-5


def test_num_splits_fill_the_card_within_the_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(da._SM_COUNT, 0, 132)
    dev = torch.device("cuda", 0)  # the SM count comes from the cache above: no GPU needed
    for n in (1, 2, 4, 8, 16, 32, 64, 256):
        s = default_num_splits(n, 2, 4096, 128, dev)
        assert s & (s - 1) == 0 and 1 <= s <= da.MAX_SPLITS
        assert s <= 4096 // 64
        if n * 2 * da.MAX_SPLITS >= 2 * 132:
            assert n * 2 * s >= 2 * 132, (n, s)  # at least two waves of programs
        assert n * 2 * s < 4 * 2 * 132 or s == 1, (n, s)  # and not many more
    assert default_num_splits(1, 2, 4096, 128, dev) == 64
    assert default_num_splits(1, 2, 64, 128, dev) == 1  # one key block: nothing to split
    assert default_num_splits(1, 2, 100, 128, dev) == 2
    assert default_num_splits(1, 2, 200, 128, dev) == 4
    assert default_num_splits(3, 2, 40, 16, torch.device("cpu")) == 1  # the interpreter: one split by default


def test_bad_inputs_are_refused() -> None:
    q, k, v = _inputs(2, 4, 2, 16, 8, torch.float32, "cpu", seed=0)
    ln = torch.tensor([3], dtype=torch.int32)
    with pytest.raises(ValueError, match="do not agree"):
        decode_attention(q, k[:1], v[:1], ln)
    with pytest.raises(ValueError, match="multiple"):
        decode_attention(q[:, :3], k, v, ln)
    with pytest.raises(ValueError, match="head dim"):
        decode_attention(q[..., :8], k[..., :8], v[..., :8], ln)
    with pytest.raises(ValueError, match="length"):
        decode_attention(q, k, v, torch.tensor([3.0]))
    with pytest.raises(ValueError, match="length"):
        decode_attention(q, k, v, torch.tensor([3, 4, 5], dtype=torch.int32))  # neither 1 nor n lengths
    with pytest.raises(ValueError, match="window"):
        decode_attention(q, k, v, ln, 0)
    with pytest.raises(ValueError, match="dtype"):
        decode_attention(q, k.half(), v.half(), ln)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("n", [1, 32])
def test_full_size_bf16_matches_fp32_reference_on_gpu(n: int) -> None:
    """StarCoder2-3B heads (Hq 24, Hkv 2, D 128), a 4096-position cache, fresh random inputs, bf16."""
    hq, hkv, d, cap = 24, 2, 128, 4096
    q, k, v = _inputs(n, hq, hkv, d, cap, torch.bfloat16, "cuda", seed=1000 + n)
    ln = torch.zeros(1, dtype=torch.int32, device="cuda")
    for length in (1, 63, 64, 1000, 4095, 4096):
        for window in (None, 4096, 1024, 100):
            ln.fill_(length)
            out = decode_attention(q, k, v, ln, window)
            ref = decode_attention_reference(q, k, v, length, window)
            err = rel(out, ref)
            worst = float((out.float() - ref).abs().max())
            assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
            assert err < 8e-3 and worst < 2e-2, (n, length, window, err, worst)
    print(f"n={n}: splits {default_num_splits(n, hkv, cap, d, q.device)}")


@pytest.mark.gpu
@gpu
def test_one_length_per_sample_on_gpu() -> None:
    """Full-size heads, 16 samples of different prompts (lengths 1 .. 4096), windowed and not, bf16."""
    hq, hkv, d, cap, n = 24, 2, 128, 4096, 16
    q, k, v = _inputs(n, hq, hkv, d, cap, torch.bfloat16, "cuda", seed=77)
    g = torch.Generator().manual_seed(78)
    lengths = torch.cat([torch.tensor([1, 4096]), torch.randint(1, cap + 1, (n - 2,), generator=g)]).to(torch.int32)
    for window in (None, 1024):
        out = decode_attention(q, k, v, lengths.cuda(), window)
        ref = decode_attention_reference(q, k, v, lengths, window)
        assert torch.isfinite(out).all()
        assert rel(out, ref) < 8e-3, window


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [64, 256])
def test_other_dtypes_and_head_dims_on_gpu(dtype: torch.dtype, d: int) -> None:
    n, hq, hkv, cap = 3, 12, 4, 1000  # group 3, a capacity that is no multiple of the key block
    q, k, v = _inputs(n, hq, hkv, d, cap, dtype, "cuda", seed=d)
    ln = torch.zeros(1, dtype=torch.int32, device="cuda")
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    for length in (1, 500, 1000):
        for window in (None, 300):
            ln.fill_(length)
            out = decode_attention(q, k, v, ln, window)
            assert rel(out, decode_attention_reference(q, k, v, length, window)) < tol, (length, window)


@pytest.mark.gpu
@gpu
def test_captured_in_a_cuda_graph_follows_the_length() -> None:
    n, hq, hkv, d, cap = 4, 24, 2, 128, 1024
    q, k, v = _inputs(n, hq, hkv, d, cap, torch.bfloat16, "cuda", seed=5)
    ln = torch.full((1,), 10, dtype=torch.int32, device="cuda")
    decode_attention(q, k, v, ln, 256)  # compile outside the capture
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        decode_attention(q, k, v, ln, 256)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = decode_attention(q, k, v, ln, 256)
    for length in (1, 10, 257, 700, 1024):
        ln.fill_(length)
        graph.replay()
        torch.cuda.synchronize()
        assert rel(out, decode_attention_reference(q, k, v, length, 256)) < 8e-3, length
