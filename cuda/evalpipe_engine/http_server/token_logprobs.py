"""Log-probabilities for the `logprobs` field: the prompt's from the score op's forward, top-k alternatives from the
logits a decoder gives.

- `prompt_logprobs`: log p(x[t] | x[:t]) for t = 1..L-1 of each prompt, from `backend.target_logprobs` (the very
  call the score op makes for a window of those tokens), so their sum over a window equals the score op's nll for
  it; groups of prompts share a forward under the score op's token budget.
- `prompt_top_logprobs`: the k most likely tokens at each prompt position. target_logprobs yields only the target's
  value, so these come from running the prompt through a decoder token by token (teacher forcing: one decode step
  per prompt token, the prompts of a group in one batch): linear in the prompt, but a decode pass on top of the
  forward. Only asked for when `logprobs` >= 1.
- `top_of`: the chosen token's value and the top-k of one logits row (generated tokens, and the decode pass above).

All values are natural-log probabilities of the model's own distribution (before temperature and top_p), float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..scoring import DEFAULT_TOKEN_BUDGET

if TYPE_CHECKING:
    from ..loading import LoadedModel

TopK = tuple[tuple[int, float], ...]  # (token id, logprob), most likely first


@dataclass(frozen=True)
class TokenLogprob:
    """One position of a `logprobs` object: the token there, its logprob (None for a prompt's first token, which
    has no context) and the k most likely tokens at that position."""

    token: int
    logprob: float | None
    top: TopK = ()


def top_of(logits: torch.Tensor, token: int, k: int) -> TokenLogprob:
    """The token's logprob under one logits row ([vocab]) and the row's k most likely tokens."""
    lp = torch.log_softmax(logits.float(), dim=-1)
    chosen = float(lp[token])
    if k == 0:
        return TokenLogprob(token, chosen)
    values, ids = torch.topk(lp, k)
    return TokenLogprob(token, chosen, tuple(zip(ids.tolist(), values.tolist(), strict=True)))


def prompt_logprobs(loaded: LoadedModel, sequences: list[list[int]]) -> list[list[float]]:
    """For each sequence of L ids, the L - 1 values log p(x[t] | x[:t]), t = 1..L-1 (empty for L = 1)."""
    out: list[list[float]] = [[] for _ in sequences]
    order = sorted((i for i, s in enumerate(sequences) if len(s) >= 2), key=lambda i: -len(sequences[i]))
    groups: list[list[int]] = []
    for i in order:  # the score op's rule: rows x longest row within the budget (a longer row alone)
        if groups and (len(groups[-1]) + 1) * len(sequences[groups[-1][0]]) <= DEFAULT_TOKEN_BUDGET:
            groups[-1].append(i)
        else:
            groups.append([i])
    for group in groups:
        chunks = [torch.tensor(sequences[i], dtype=torch.long) for i in group]
        for i, values in zip(group, loaded.backend.target_logprobs(chunks), strict=True):
            out[i] = [float(v) for v in values.tolist()]
    return out


def prompt_top_logprobs(loaded: LoadedModel, sequences: list[list[int]], k: int, max_rows: int) -> list[list[TopK]]:
    """For each sequence of L ids, the top-k at positions 1..L-1 (what the model predicts after x[:t])."""
    backend = loaded.backend
    out: list[list[TopK]] = [[] for _ in sequences]
    order = [i for i, s in enumerate(sequences) if len(s) >= 2]
    rows = max_rows if backend.batches_prompts else 1
    for a in range(0, len(order), rows):
        group = order[a : a + rows]
        seqs = [sequences[i] for i in group]
        firsts = [torch.tensor(s[:1], dtype=torch.long) for s in seqs]
        capacity = max(len(s) for s in seqs)
        if backend.batches_prompts:
            decoder = backend.open_batch_decoder(firsts, [1] * len(seqs), capacity=capacity)
        else:
            decoder = backend.open_decoder(firsts[0], 1, capacity=capacity)
        logits = decoder.first_logits
        active = list(range(len(seqs)))  # decoder row r holds seqs[active[r]]
        pos = 1  # the position the current logits predict
        while True:
            for r, j in enumerate(active):
                if pos < len(seqs[j]):
                    out[group[j]].append(top_of(logits[r], seqs[j][pos], k).top)
            pos += 1
            still = [r for r, j in enumerate(active) if pos < len(seqs[j])]
            if not still:
                break
            if decoder.can_drop_rows and len(still) != len(active):
                decoder.keep(still)
                active = [active[r] for r in still]
            # Finished rows a decoder cannot drop are fed a placeholder; their logits are not read.
            feed = [seqs[j][pos - 1] if pos < len(seqs[j]) else 0 for j in active]
            logits = decoder.step(torch.tensor(feed, dtype=torch.long))
    return out
