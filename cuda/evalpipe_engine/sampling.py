"""Token choice on the logits' device: greedy argmax, or temperature / top_p sampling driven by counter-based
uniforms, so that a decode step needs no host generator and no per-row host work to pick its tokens.

Sampler version 2 (`SAMPLER`): the uniform of a sample's d-th draw (d = 0 for its first new token) is

    x = seed + (d + 1) * 0x9E3779B97F4A7C15          (mod 2**64; seed = generation.sample_seed(...))
    z = splitmix64 finalizer of x                     (xor-shift-multiply by 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
    u = (z >> 11) * 2**-53                            (53 bits, in [0, 1))

a pure function of (seed, d): computed in int64 tensor arithmetic (wrapping, with masked right shifts), it is the
same on every device and whatever the batch, and `uniform_reference` is the same function in Python integers (the
tests pin one against the other). Version 1 drew u from one CPU torch.Generator per sample (`torch.rand`, one host
call per row per step); the tokens sampled with temperature > 0 differ between the versions, greedy tokens do not.

The pick from u is unchanged: softmax(logits / T) in float64, tokens sorted by probability (stable), cut to the
nucleus (the smallest prefix whose mass reaches top_p), and the first token whose cumulative mass exceeds u times
the nucleus mass.

How `pick_tokens` computes that pick without the float64 sort (7.9 of the 10.4 ms of a 1024 x 49152 pick on the
H200, bench/results/sampler-cost-h200-2026-12-04.json), with the same bits:
- The probabilities in descending order are one array, whatever sort produced them (a sorted multiset). Softmax is
  monotone in each logit (one exp and one division for every element of a row), so ordering the float32 logits
  (half the bytes of the float64 probabilities) and reading the probabilities in that order gives that array; the
  cumulative sums, the nucleus mask, the cdf and the searched position are then the full sort's, bit for bit.
- Only the token at the searched position j can differ: where tokens of equal probability (a run) have different
  logits, the logit order is not the stable order. The run of j holds the same tokens in both orders (those of
  probability v = sorted[j], after the `before` tokens of higher probability), and the stable order lists them by
  index, so the token is the (j - before)-th smallest index whose probability is v: one comparison, one count and
  one int32 cumulative sum per row, no host work. On CUDA one Triton launch finds that token from the sorted
  arrays (kernels/stable_pick.py: binary searches for the run's bounds, a pass over the row only where v is tied).
- `key_dtype`: logits that a bf16 (or fp16) head made are bf16 values held in float32, so converting them back is
  exact and keeps every order and every tie: the sort then runs on 16-bit keys. The caller states it (the decoder's
  `logits_dtype`); for other logits the float32 sort runs (a narrowing that rounds would merge distinct logits).
"""

from __future__ import annotations

import torch

SAMPLER = "counter-splitmix64-v2"

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """A 64-bit constant as the int64 it is in two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_GOLDEN_I64 = _signed(_GOLDEN)
_MIX1_I64 = _signed(_MIX1)
_MIX2_I64 = _signed(_MIX2)


def _shift_right(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 values (torch's >> is arithmetic: the sign bits are masked off)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def uniforms(seeds: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """u in [0, 1) (float64) of each row's draw: seeds and draws are int64 tensors of one shape, on one device."""
    x = seeds + (draws + 1) * _GOLDEN_I64
    z = (x ^ _shift_right(x, 30)) * _MIX1_I64
    z = (z ^ _shift_right(z, 27)) * _MIX2_I64
    z = z ^ _shift_right(z, 31)
    return _shift_right(z, 11).to(torch.float64) * (2.0**-53)


def uniform_reference(seed: int, draw: int) -> float:
    """`uniforms` for one (seed, draw), in Python integers: the definition the tensor arithmetic is tested against."""
    x = (seed + (draw + 1) * _GOLDEN) & _MASK64
    z = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    z ^= z >> 31
    return (z >> 11) * 2.0**-53


def pick_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    u: torch.Tensor | None,
    *,
    key_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One token per row of logits ([m, vocab] float32) as an int64 tensor on the logits' device. temperature 0:
    argmax (u unused). Otherwise u ([m] float64 on the same device) picks by inverse CDF inside the nucleus.
    key_dtype: a 16-bit float dtype every logit is exactly a value of (the head's output dtype), to sort in."""
    if temperature == 0.0:
        return torch.argmax(logits, dim=-1)
    if u is None:
        raise ValueError("sampling with temperature > 0 needs one uniform per row")
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    narrow = key_dtype in (torch.bfloat16, torch.float16) and logits.dtype == torch.float32
    keys = logits.to(key_dtype) if narrow else logits
    # the probabilities in descending order, read in the logits' order (the module docstring)
    order = torch.sort(keys, dim=-1, descending=True).indices
    ordered = probs.gather(-1, order)
    pick = _searched_position(ordered, top_p, u)
    if probs.is_cuda:
        from .kernels.stable_pick import stable_pick  # Triton: imported where a GPU runs it

        return stable_pick(probs, ordered, order, pick)  # the same token in one launch
    return stable_order_token(probs, ordered.gather(-1, pick), pick)


def _searched_position(ordered: torch.Tensor, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """The position ([m, 1] int64) that u picks in each row of descending probabilities `ordered`: the nucleus (the
    smallest prefix whose mass reaches top_p), then the first position whose cdf exceeds u times its mass (a token
    of non-zero probability inside the nucleus)."""
    kept = ordered * ((torch.cumsum(ordered, dim=-1) - ordered) < top_p) if top_p < 1.0 else ordered
    cdf = torch.cumsum(kept, dim=-1)
    return torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).clamp_(max=cdf.shape[-1] - 1)


def pick_reference(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """`pick_tokens` (temperature > 0) as the definition states it, through the full stable sort of the float64
    probabilities: what the tests and bench/sampler_cost.py compare pick_tokens against (like uniform_reference)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    return order.gather(-1, _searched_position(sorted_p, top_p, u)).squeeze(-1)


def stable_order_token(probs: torch.Tensor, value: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """The token at position `pick` ([m, 1] int64) of each row's stable descending order of probs ([m, vocab]),
    given the probability `value` ([m, 1]) found there: the (pick - before)-th smallest index among the tokens of
    probability `value`, `before` being how many tokens are more probable. Returns [m] int64."""
    before = (probs > value).sum(dim=-1, keepdim=True)
    ties = (probs == value).to(torch.int32).cumsum(dim=-1, dtype=torch.int32)
    rank = (pick - before + 1).to(torch.int32)
    return torch.searchsorted(ties, rank).squeeze(-1)


def choose_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    seeds: torch.Tensor | None,
    draws: torch.Tensor | None,
    *,
    per_row: bool = False,
    key_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One token per row of logits ([m, vocab] float32, any device), as an int64 tensor on that device; row r draws
    its uniform from (seeds[r], draws[r]) (int64 tensors on that device; unused when greedy). A row's pick depends
    only on its logits, its seed and its draw index, not on the batch. `per_row` (the deterministic mode) samples
    each row on its own [1, vocab] tensor, so that not even the softmax's reduction strategy can depend on the number
    of rows (argmax is exact either way). key_dtype: pick_tokens'."""
    if temperature == 0.0:
        return pick_tokens(logits, 0.0, top_p, None)
    if seeds is None or draws is None:
        raise ValueError("sampling with temperature > 0 needs each row's seed and draw index")
    u = uniforms(seeds, draws)
    if per_row and logits.shape[0] > 1:
        rows = [logits[r : r + 1] for r in range(len(u))]
        return torch.cat(
            [pick_tokens(row, temperature, top_p, u[r : r + 1], key_dtype=key_dtype) for r, row in enumerate(rows)]
        )
    return pick_tokens(logits, temperature, top_p, u, key_dtype=key_dtype)
