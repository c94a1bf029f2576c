"""Fused log-softmax-at-target for the LM head (Triton): for each row of logits [M, V] (any float dtype) and its
target id, out = logits[target] - logsumexp(logits), accumulated in float32 with a running max/sum over vocab
blocks. Reads the logits once in their own dtype: no float32 copy of the [M, V] block is ever made."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _lse_target_kernel(LOGITS, TARGETS, OUT, n_vocab, stride_row, BLOCK_V: tl.constexpr):
    row = tl.program_id(0)
    base = LOGITS + row.to(tl.int64) * stride_row
    offs = tl.arange(0, BLOCK_V)
    m = tl.full([BLOCK_V], float("-inf"), dtype=tl.float32)
    s = tl.zeros([BLOCK_V], dtype=tl.float32)
    for start in range(0, n_vocab, BLOCK_V):
        x = tl.load(base + start + offs, mask=start + offs < n_vocab, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, x)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        s = s * tl.exp(m - m_safe) + tl.exp(x - m_safe)
        m = m_new
    m_all = tl.max(m, 0)
    total = tl.sum(s * tl.exp(m - m_all), 0)
    tgt = tl.load(TARGETS + row)
    x_t = tl.load(base + tgt).to(tl.float32)
    tl.store(OUT + row, (x_t - m_all) - tl.log(total))


def lse_target(logits: torch.Tensor, targets: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """logits [M, V] (last dim contiguous), targets [M] int64 -> float32 [M]."""
    m, v = logits.shape
    if logits.stride(1) != 1:
        raise ValueError("lse_target: logits must have a contiguous last dimension")
    if out is None:
        out = torch.empty(m, dtype=torch.float32, device=logits.device)
    if m == 0:
        return out
    block = 16 if logits.device.type != "cuda" else 2048
    _lse_target_kernel[(m,)](logits, targets, out, v, logits.stride(0), BLOCK_V=block, num_warps=8 if block > 16 else 1)
    return out
