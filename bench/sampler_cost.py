"""What one sampled token choice costs on the GPU (sampling.pick_tokens, temperature 0.8, top_p 0.95) at the
continuous loop's batch sizes, against the baseline of the same pick through the full stable float64 sort
(sampling.pick_reference, timed in the same run on the same logits, its tokens checked equal), and where the time
goes: the float64 softmax, the stable descending float64 sort (the reference's), the float32 sort of the logits
(pick_tokens'), a bf16 sort of them (the candidate key when a bf16 head made the logits), the cumulative sum and
the search, each timed alone (CUDA events, median of --repeats) on [rows, vocab] float32 logits drawn from
N(0, std^2) (std 1: the nearly flat distributions of random weights, whose nucleus is most of the vocabulary;
std 4: peaked, like a trained model's). Prints a table; writes --out JSON.

Usage (GPU):  PYTHONPATH=cuda python bench/sampler_cost.py --out /tmp/sampler.json
Smoke (CPU):  PYTHONPATH=cuda python bench/sampler_cost.py --device cpu --rows 4 --vocab 512 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch
from decode_matrix import Timer
from records import git_commit, write_json_atomic

from evalpipe_engine.sampling import (
    _searched_position,
    pick_reference,
    pick_tokens,
    stable_order_token,
    uniforms,
)
from evalpipe_engine.system_info import system_info

TEMPERATURE, TOP_P = 0.8, 0.95


def median_ms(device: torch.device, work: Callable[[], object], repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        with Timer(device) as t:
            work()
        times.append(t.ms)
    return statistics.median(times)


def parts(logits: torch.Tensor, u: torch.Tensor, device: torch.device, repeats: int) -> dict[str, Any]:
    """Milliseconds of pick_tokens and of each of its parts on these logits."""
    probs = torch.softmax(logits.double() / TEMPERATURE, dim=-1)
    sorted_p, _ = torch.sort(probs, dim=-1, descending=True, stable=True)
    cdf = torch.cumsum(sorted_p, dim=-1)
    target = (u * cdf[:, -1]).unsqueeze(-1)
    keys16 = logits.bfloat16()
    out: dict[str, Any] = {
        "pick_tokens": median_ms(device, lambda: pick_tokens(logits, TEMPERATURE, TOP_P, u), repeats),
        "pick_reference": median_ms(device, lambda: pick_reference(logits, TEMPERATURE, TOP_P, u), repeats),
        "softmax_float64": median_ms(device, lambda: torch.softmax(logits.double() / TEMPERATURE, dim=-1), repeats),
        "sort_float64_stable": median_ms(
            device, lambda: torch.sort(probs, dim=-1, descending=True, stable=True), repeats
        ),
        "cumsum_float64": median_ms(device, lambda: torch.cumsum(sorted_p, dim=-1), repeats),
        "searchsorted": median_ms(device, lambda: torch.searchsorted(cdf, target, right=True), repeats),
        "sort_float32_logits": median_ms(device, lambda: torch.sort(logits, dim=-1, descending=True), repeats),
        # what a 16-bit key would cost (exact only for logits a bf16 head produced: a candidate, not the pick's)
        "sort_bf16_logits": median_ms(device, lambda: torch.sort(keys16, dim=-1, descending=True), repeats),
    }
    # the logits a bf16 head gives (bf16 values in float32): the pick with its 16-bit sort keys, as the continuous
    # loop runs it, against the reference on the same logits
    head16 = logits.bfloat16().float()
    out["pick_tokens_bf16_keys"] = median_ms(
        device, lambda: pick_tokens(head16, TEMPERATURE, TOP_P, u, key_dtype=torch.bfloat16), repeats
    )
    # the tie repair alone on those logits: stable_order_token's whole-row torch passes (the CPU path, and the CUDA
    # path before kernels/stable_pick.py) against the kernel the CUDA path runs now
    probs16 = torch.softmax(head16.double() / TEMPERATURE, dim=-1)
    order16 = torch.sort(keys16, dim=-1, descending=True).indices
    ordered16 = probs16.gather(-1, order16)
    at = _searched_position(ordered16, TOP_P, u)
    out["tie_repair_torch"] = median_ms(
        device, lambda: stable_order_token(probs16, ordered16.gather(-1, at), at), repeats
    )
    if device.type == "cuda":
        from evalpipe_engine.kernels.stable_pick import stable_pick

        out["tie_repair_kernel"] = median_ms(device, lambda: stable_pick(probs16, ordered16, order16, at), repeats)
        out["tie_repair_equal"] = bool(
            torch.equal(
                stable_pick(probs16, ordered16, order16, at), stable_order_token(probs16, ordered16.gather(-1, at), at)
            )
        )
    out["tokens_equal"] = bool(
        torch.equal(pick_tokens(logits, TEMPERATURE, TOP_P, u), pick_reference(logits, TEMPERATURE, TOP_P, u))
    )
    out["tokens_equal_bf16_keys"] = bool(
        torch.equal(
            pick_tokens(head16, TEMPERATURE, TOP_P, u, key_dtype=torch.bfloat16),
            pick_reference(head16, TEMPERATURE, TOP_P, u),
        )
    )
    nucleus = ((torch.cumsum(sorted_p, dim=-1) - sorted_p) < TOP_P).sum(-1).double()
    out["nucleus_tokens_mean"] = float(nucleus.mean())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="256,1024")
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--stds", default="1,4")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("sampler_cost: no CUDA device visible; pass --device cpu for a smoke run", file=sys.stderr)
        return 2
    record: dict[str, Any] = {
        "benchmark": "sampler_cost",
        "system": system_info(),
        "git_commit": git_commit(),
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "vocab": args.vocab,
        "cases": [],
    }
    g = torch.Generator(device=device).manual_seed(0)
    print(
        f"{'rows':>5} {'std':>4} {'nucleus':>8} {'pick ms':>8} {'ref ms':>8} {'speedup':>8} {'equal':>6} "
        f"{'softmax':>8} {'sort64':>8} {'sort32':>8} {'sort16':>8} {'cumsum':>8} {'search':>8} {'us/row':>7}"
        f" {'pick16':>8} {'equal16':>7} {'repair':>7} {'kernel':>7}"
    )
    for rows in [int(r) for r in args.rows.split(",")]:
        for std in [float(s) for s in args.stds.split(",")]:
            logits = torch.randn(rows, args.vocab, device=device, generator=g) * std
            u = uniforms(torch.arange(rows, device=device), torch.zeros(rows, dtype=torch.int64, device=device))
            ms = parts(logits, u, device, args.repeats)
            record["cases"].append({"rows": rows, "std": std, "ms": ms})
            print(
                f"{rows:5d} {std:4.0f} {ms['nucleus_tokens_mean']:8.0f} {ms['pick_tokens']:8.2f}"
                f" {ms['pick_reference']:8.2f} {ms['pick_reference'] / ms['pick_tokens']:7.2f}x"
                f" {'yes' if ms['tokens_equal'] else 'NO':>6}"
                f" {ms['softmax_float64']:8.2f} {ms['sort_float64_stable']:8.2f} {ms['sort_float32_logits']:8.2f}"
                f" {ms['sort_bf16_logits']:8.2f}"
                f" {ms['cumsum_float64']:8.2f} {ms['searchsorted']:8.2f} {ms['pick_tokens'] * 1e3 / rows:7.1f}"
                f" {ms['pick_tokens_bf16_keys']:8.2f} {'yes' if ms['tokens_equal_bf16_keys'] else 'NO':>7}"
                f" {ms['tie_repair_torch']:7.2f} {ms.get('tie_repair_kernel', float('nan')):7.2f}"
            )
            sys.stdout.flush()
            write_json_atomic(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
