"""Flash-decoding (Triton): one query per sample against a static-capacity KV cache, with the number of valid
positions read from a device tensor, so that the launch has the same shapes and arguments at every step and can
be captured in a CUDA graph.

Layout: q [n, Hq, D] (any sample/head strides, last dim contiguous), k_cache and v_cache [n, Hkv, C, D] (capacity
C, last dim contiguous), `length` an int32 (or int64) device tensor of one element: positions 0 .. length-1 of
every sample are valid. With a sliding window W only positions max(0, length - W) .. length - 1 are attended
(the query sits at position length - 1: HF's `kv_idx > q_idx - sliding_window`). Output [n, Hq, D] in q's dtype;
scores, softmax and accumulation in float32, softmax scale 1/sqrt(D) unless given.

Two kernels:
- split: one program per (sample, KV head, split). The program loads the `group` = Hq/Hkv query heads that share
  the KV head as one [G_PAD, D] tile (G_PAD = next power of two >= max(group, 16), the padding rows are zeros and
  never stored), so both products are tensor-core `tl.dot`s. The attended range [lo, length) is cut into
  `num_splits` equal BLOCK_N-aligned chunks computed from the loaded length (the loop bounds live on the device:
  no host sync and nothing that changes with the length); each program runs an online softmax over its chunk and
  writes its normalised partial output and its log-sum-exp (base 2) to float32 scratch. A split whose chunk is
  empty (short lengths) writes lse = -inf.
- combine: one program per (sample, query head) merges the splits' partials by their log-sum-exp weights.
  With a single split the split kernel writes the output itself and there is no combine launch.

`num_splits` is fixed per (n, Hkv, C) by `default_num_splits`: enough (sample, head, split) programs to fill the
card's SMs about twice when the batch is small, never more splits than the capacity has key blocks.

`decode_attention_reference` is the same function in float32 PyTorch (SDPA over the sliced cache); tests compare
the kernel against it, on the GPU and on CPU through TRITON_INTERPRET=1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .flash_attention import online_softmax_update, scaled_scores

LOG2E = 1.4426950408889634
MAX_SPLITS = 64
# The deterministic mode's split count, whatever the batch size or capacity (invariant.py): a row's partial sums
# then depend only on its own length. Eight fill an H100/H200 with one KV head group of a batch-1 decode.
DETERMINISTIC_SPLITS = 8
_SM_COUNT: dict[int, int] = {}


@triton.jit
def _decode_split_kernel(
    Q,
    K,
    V,
    LEN,
    O_PART,
    LSE_PART,
    OUT,
    stride_qb,
    stride_qh,
    stride_ob,
    stride_oh,
    stride_kb,
    stride_kh,
    stride_kt,
    stride_vb,
    stride_vh,
    stride_vt,
    n_kv_heads,
    qk_scale,
    window,
    len_stride,
    GROUP: tl.constexpr,
    G_PAD: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    HAS_WINDOW: tl.constexpr,
    IEEE_F32: tl.constexpr,
    UPCAST: tl.constexpr,
):
    pid = tl.program_id(0)
    split = tl.program_id(1)
    b = pid // n_kv_heads
    kvh = pid % n_kv_heads
    length = tl.load(LEN + b * len_stride).to(tl.int32)  # one length for all samples (stride 0) or one each
    if HAS_WINDOW:  # noqa: SIM108 (a constexpr branch, not a ternary)
        lo = tl.maximum(length - window, 0)
    else:
        lo = 0
    # this split's chunk of [lo, length): equal BLOCK_N-aligned pieces, the last ones possibly short or empty
    per = tl.cdiv(tl.cdiv(length - lo, NUM_SPLITS), BLOCK_N) * BLOCK_N
    start = lo + split * per
    end = tl.minimum(start + per, length)

    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_n0 = tl.arange(0, BLOCK_N)
    g_ok = offs_g < GROUP
    heads = kvh * GROUP + offs_g
    q_ptrs = Q + b.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=g_ok[:, None], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    k_base = K + b.to(tl.int64) * stride_kb + kvh.to(tl.int64) * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + kvh.to(tl.int64) * stride_vh

    m_i = tl.full([G_PAD], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([G_PAD], dtype=tl.float32)
    acc = tl.zeros([G_PAD, HEAD_DIM], dtype=tl.float32)
    for start_n in range(start, end, BLOCK_N):
        offs_n = start_n + offs_n0
        kv_ok = offs_n < end
        k = tl.load(k_base + offs_n[:, None] * stride_kt + offs_d[None, :], mask=kv_ok[:, None], other=0.0)
        v = tl.load(v_base + offs_n[:, None] * stride_vt + offs_d[None, :], mask=kv_ok[:, None], other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.where(kv_ok[None, :], scaled_scores(q, k, qk_scale, IEEE_F32), float("-inf"))
        # every visited block holds at least one valid key, so m_new is finite from the first block on (no shift)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        acc, l_i = online_softmax_update(acc, m_i, l_i, s, v, m_new, IEEE_F32)
        m_i = m_new

    empty = l_i == 0.0
    out = acc / tl.where(empty, 1.0, l_i)[:, None]
    if NUM_SPLITS == 1:  # nothing to merge: the final output directly (no combine launch)
        o_ptrs = OUT + b.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
        tl.store(o_ptrs, out.to(OUT.dtype.element_ty), mask=g_ok[:, None])
    else:
        lse = tl.where(empty, float("-inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
        n_heads = n_kv_heads * GROUP
        row = (b * n_heads + heads).to(tl.int64) * NUM_SPLITS + split  # [G_PAD] rows of the [n, Hq, S] scratch
        tl.store(LSE_PART + row, lse, mask=g_ok)
        tl.store(O_PART + row[:, None] * HEAD_DIM + offs_d[None, :], out, mask=g_ok[:, None])


@triton.jit
def _decode_combine_kernel(
    O_PART,
    LSE_PART,
    OUT,
    stride_ob,
    stride_oh,
    n_heads,
    NUM_SPLITS: tl.constexpr,
    S_PAD: tl.constexpr,
    HEAD_DIM: tl.constexpr,
):
    pid = tl.program_id(0)
    b = pid // n_heads
    h = pid % n_heads
    offs_s = tl.arange(0, S_PAD)
    offs_d = tl.arange(0, HEAD_DIM)
    s_ok = offs_s < NUM_SPLITS
    row = pid.to(tl.int64) * NUM_SPLITS + offs_s
    lse = tl.load(LSE_PART + row, mask=s_ok, other=float("-inf"))
    m = tl.max(lse, 0)
    m = tl.where(m == float("-inf"), 0.0, m)  # length 0: every split empty; the output is then 0
    w = tl.math.exp2(lse - m)
    o = tl.load(O_PART + row[:, None] * HEAD_DIM + offs_d[None, :], mask=s_ok[:, None], other=0.0)
    total = tl.sum(w, 0)
    out = tl.sum(w[:, None] * o, 0) / tl.where(total == 0.0, 1.0, total)
    tl.store(OUT + b.to(tl.int64) * stride_ob + h * stride_oh + offs_d, out.to(OUT.dtype.element_ty))


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1  # the interpreter runs programs one after another, slowly: one split unless asked for more
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SM_COUNT:
        _SM_COUNT[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return _SM_COUNT[index]


def block_n_for(head_dim: int, device: torch.device, dtype: torch.dtype = torch.bfloat16) -> int:
    """Keys per loop iteration: 16 in the interpreter (tiny shapes); on the GPU 64 for 16-bit D <= 128, halved for
    D = 256 and again for float32 (pipelined K and V tiles stay well inside shared memory)."""
    if device.type != "cuda":
        return 16
    block = 64 if head_dim <= 128 else 32
    return block // 2 if dtype == torch.float32 else block


def default_num_splits(
    n: int,
    n_kv_heads: int,
    capacity: int,
    head_dim: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
) -> int:
    """A power of two: about two waves of (sample, KV head, split) programs over the SMs, at most one split per
    key block of the capacity and at most MAX_SPLITS. Depends only on static sizes, so a captured graph keeps it."""
    programs = max(1, n * n_kv_heads)
    want = triton.next_power_of_2(max(1, triton.cdiv(2 * _sm_count(device), programs)))
    blocks = max(1, triton.cdiv(capacity, block_n_for(head_dim, device, dtype)))
    cap = 1 << (blocks.bit_length() - 1)  # largest power of two <= blocks
    return max(1, min(want, cap, MAX_SPLITS))


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: torch.Tensor,
    window: int | None = None,
    *,
    scale: float | None = None,
    num_splits: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention of q [n, Hq, D] over the first `length` (device tensor) positions of k/v_cache [n, Hkv, C, D],
    optionally only the last `window` of them. `length` holds one element (every sample) or n (one per sample:
    samples of different prompts decoded together). See the module docstring. Graph-capturable: nothing here
    reads the device."""
    n, n_heads, head_dim = q.shape
    if k_cache.dim() != 4 or k_cache.shape[0] != n or k_cache.shape[3] != head_dim or v_cache.shape != k_cache.shape:
        raise ValueError(
            f"decode_attention: q {tuple(q.shape)}, k_cache {tuple(k_cache.shape)}, "
            f"v_cache {tuple(v_cache.shape)} do not agree"
        )
    n_kv, capacity = k_cache.shape[1], k_cache.shape[2]
    if n_heads % n_kv != 0:
        raise ValueError(f"decode_attention: {n_heads} query heads is not a multiple of {n_kv} KV heads")
    if head_dim not in (16, 32, 64, 128, 256):
        raise ValueError(f"decode_attention: head dim {head_dim} unsupported (use 16, 32, 64, 128 or 256)")
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache)):
        if t.stride(-1) != 1:
            raise ValueError(f"decode_attention: {name} must have a contiguous last dimension")
    if k_cache.dtype != q.dtype or v_cache.dtype != q.dtype:
        raise ValueError(f"decode_attention: q {q.dtype}, k {k_cache.dtype}, v {v_cache.dtype} must share a dtype")
    if (
        length.numel() not in (1, n)
        or length.dim() > 1
        or length.dtype not in (torch.int32, torch.int64)
        or length.device != q.device
    ):
        raise ValueError(
            f"decode_attention: length must be 1 or n={n} int32/int64 elements on q's device, "
            f"got {tuple(length.shape)} {length.dtype} on {length.device}"
        )
    len_stride = 0 if length.numel() == 1 else length.stride(-1)
    if window is not None and window < 1:
        raise ValueError(f"decode_attention: window must be >= 1, got {window}")
    if out is None:
        out = torch.empty((n, n_heads, head_dim), dtype=q.dtype, device=q.device)
    if n == 0:
        return out
    splits = num_splits or default_num_splits(n, n_kv, capacity, head_dim, q.device, q.dtype)
    if splits < 1:
        raise ValueError(f"decode_attention: num_splits must be >= 1, got {splits}")
    group = n_heads // n_kv
    g_pad = max(16, triton.next_power_of_2(group))
    block_n = block_n_for(head_dim, q.device, q.dtype)
    if splits > 1:
        o_part = torch.empty((n, n_heads, splits, head_dim), dtype=torch.float32, device=q.device)
        lse_part = torch.empty((n, n_heads, splits), dtype=torch.float32, device=q.device)
    else:  # the split kernel writes `out` itself; the scratch arguments are never touched
        o_part = lse_part = out
    sm_scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
    # a window at least as large as the capacity never bites
    has_window = window is not None and window < capacity
    on_gpu = q.device.type == "cuda"
    # Triton's CPU interpreter computes bf16 dots wrongly (it multiplies the raw bits): there the tiles are
    # upcast to float32 first. On the GPU bf16 stays on the tensor cores.
    upcast = not on_gpu and q.dtype == torch.bfloat16
    _decode_split_kernel[(n * n_kv, splits)](
        q, k_cache, v_cache, length, o_part, lse_part, out,
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        n_kv, sm_scale * LOG2E, int(window) if has_window else 0, len_stride,
        GROUP=group, G_PAD=g_pad, HEAD_DIM=head_dim, BLOCK_N=block_n, NUM_SPLITS=splits, HAS_WINDOW=has_window,
        IEEE_F32=q.dtype == torch.float32 or upcast, UPCAST=upcast,
        num_warps=4 if on_gpu else 1, num_stages=(2 if q.dtype == torch.float32 else 3) if on_gpu else 1,
    )  # fmt: skip
    if splits > 1:
        _decode_combine_kernel[(n * n_heads,)](
            o_part, lse_part, out, out.stride(0), out.stride(1), n_heads,
            NUM_SPLITS=splits, S_PAD=triton.next_power_of_2(splits), HEAD_DIM=head_dim,
            num_warps=4 if on_gpu and head_dim >= 128 else 1,
        )  # fmt: skip
    return out


def decode_attention_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    length: int | torch.Tensor,
    window: int | None = None,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """The same function in float32 PyTorch: SDPA of each query over the sliced cache [lo:length]. Returns float32
    [n, Hq, D] (test reference; reads `length` on the host). A per-sample `length` ([n]) is done row by row."""
    if isinstance(length, torch.Tensor) and length.numel() > 1:
        rows = [
            decode_attention_reference(
                q[i : i + 1], k_cache[i : i + 1], v_cache[i : i + 1], length[i], window, scale=scale
            )
            for i in range(q.shape[0])
        ]
        return torch.cat(rows)
    total = int(length)
    lo = 0 if window is None else max(0, total - window)
    k = k_cache[:, :, lo:total].float()
    v = v_cache[:, :, lo:total].float()
    sm_scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    o = F.scaled_dot_product_attention(q.float()[:, :, None, :], k, v, scale=sm_scale, enable_gqa=True)
    return o[:, :, 0]
