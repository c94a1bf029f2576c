"""The token at a searched position of each row's stable descending order of probabilities, in one Triton launch:
what sampling.stable_order_token computes with whole-row torch passes (a comparison and a count, an equality, an
int32 cumulative sum and a search over every element: about 1 ms of a 1024 x 49152 pick), from the arrays the
pick already has.

Row r: `ordered` holds its probabilities in descending order (sampling.pick_tokens: the probabilities read in the
logits' sort order, `order`), `pick` the searched position j and v = ordered[j]. The tokens of probability v are
the run ordered[lo:hi] (softmax is monotone in the logit, so equal probabilities are adjacent), `lo` of them more
probable; the stable order lists the run by index, so the token is the (j - lo)-th smallest index of probability
v. `lo` and `hi` come from binary searches of the row (a few dozen loads); a run of one token (hi - lo == 1) is
order[j], and only a row whose v is tied reads its whole probability row once, counting the tokens equal to v in
index order. Only comparisons and integer counts: the same token as stable_order_token's, bit for bit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _stable_pick_kernel(PROBS, ORDERED, ORDER, PICK, OUT, n_vocab, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * n_vocab
    j = tl.load(PICK + row).to(tl.int64)
    v = tl.load(ORDERED + base + j)
    # lo: the first position in [0, j] whose probability is not above v (the row does not increase)
    lo = j * 0
    hi = j
    while lo < hi:
        mid = (lo + hi) // 2
        if tl.load(ORDERED + base + mid) > v:
            lo = mid + 1
        else:
            hi = mid
    # end: the first position in [j + 1, n_vocab) whose probability is below v
    a = j + 1
    end = j * 0 + n_vocab
    while a < end:
        mid = (a + end) // 2
        if tl.load(ORDERED + base + mid) < v:
            end = mid
        else:
            a = mid + 1
    token = tl.load(ORDER + base + j)
    if end - lo > 1:
        rank = j - lo + 1  # 1-based among the tokens of probability v, in index order
        seen = j * 0
        found = j * 0 + n_vocab
        start = j * 0
        while start < n_vocab:
            offs = start + tl.arange(0, BLOCK)
            eq = (tl.load(PROBS + base + offs, mask=offs < n_vocab, other=-1.0) == v).to(tl.int64)
            hit = (seen + tl.cumsum(eq, 0) == rank) & (eq != 0)
            found = tl.minimum(found, tl.min(tl.where(hit, offs, n_vocab), 0))
            seen += tl.sum(eq, 0)
            start = tl.where(seen >= rank, n_vocab, start + BLOCK)
        token = found
    tl.store(OUT + row, token)


def stable_pick(probs: torch.Tensor, ordered: torch.Tensor, order: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """[m] int64: row r's token at position pick[r] ([m, 1] int64) of its stable descending order of probs
    ([m, vocab] float64), given ordered (probs in descending order, [m, vocab]) and order (the token of each
    position of ordered, int64). All contiguous, on one device."""
    m, n_vocab = probs.shape
    for name, t in (("probs", probs), ("ordered", ordered), ("order", order)):
        if t.shape != probs.shape or not t.is_contiguous():
            raise ValueError(f"stable_pick: {name} {tuple(t.shape)} must be contiguous and shaped like probs")
    out = torch.empty(m, dtype=torch.int64, device=probs.device)
    _stable_pick_kernel[(m,)](probs, ordered, order, pick.contiguous(), out, n_vocab, BLOCK=BLOCK, num_warps=4)
    return out
