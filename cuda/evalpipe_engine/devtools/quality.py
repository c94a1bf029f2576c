"""How much a precision mode changes the model's predictions, measured against a reference (bf16 or fp32).

- `next_token_kl`: KL(P_ref || P_test) of next-token distributions, per row, in nats.
- `logit_deltas`: max/mean |logit difference| and top-1 agreement.
- `random_stack_kl`: the KL of every mode against a reference on a random StarCoder2-shaped decoder stack (MLP
  blocks with residuals and layer norms, a vocabulary head), every linear built through `build_linear`, so it
  needs no checkpoint; used by tests and by bench/quant_quality.py.
- `model_mode_kl`: the same against our own StarCoder2 (`model.NativeStarcoder2.random`), when a model factory is
  given.
Perplexity deltas come from the perplexity stage (the lead's report compares runs of each mode).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..quant import QuantOptions, activation_dtype, build_linear, check_mode


def next_token_kl(ref_logits: torch.Tensor, test_logits: torch.Tensor) -> torch.Tensor:
    """Per-row KL(softmax(ref) || softmax(test)) in nats, computed in fp32. Both [rows, vocab]."""
    if ref_logits.shape != test_logits.shape or ref_logits.dim() != 2:
        raise ValueError(
            f"next_token_kl needs two [rows, vocab] tensors of one shape, got "
            f"{list(ref_logits.shape)} and {list(test_logits.shape)}"
        )
    lp = torch.log_softmax(ref_logits.float(), dim=-1)
    lq = torch.log_softmax(test_logits.float(), dim=-1)
    return (lp.exp() * (lp - lq)).sum(dim=-1).clamp_min(0.0)


def logit_deltas(ref_logits: torch.Tensor, test_logits: torch.Tensor) -> dict[str, float]:
    d = (test_logits.float() - ref_logits.float()).abs()
    agree = (test_logits.argmax(dim=-1) == ref_logits.argmax(dim=-1)).float().mean()
    return {"max_abs": d.max().item(), "mean_abs": d.mean().item(), "top1_agreement": agree.item()}


@dataclass(frozen=True)
class StackShape:
    hidden: int = 256
    ffn: int = 1024
    layers: int = 4
    vocab: int = 1000


class _RandomStack(nn.Module):
    """Embedding -> [x + c_proj(gelu(c_fc(ln(x))))] * layers -> ln -> head, built from given fp32 weights."""

    def __init__(
        self, weights: dict[str, torch.Tensor], shape: StackShape, mode: str, act: torch.dtype, options: QuantOptions
    ) -> None:
        super().__init__()
        self.act = act
        self.embed = weights["embed"].to(act)
        self.fc = nn.ModuleList()
        self.proj = nn.ModuleList()
        for i in range(shape.layers):
            self.fc.append(
                build_linear(weights[f"{i}.fc.w"], weights[f"{i}.fc.b"], mode, act, name=f"{i}.c_fc", options=options)
            )
            self.proj.append(
                build_linear(
                    weights[f"{i}.proj.w"], weights[f"{i}.proj.b"], mode, act, name=f"{i}.c_proj", options=options
                )
            )
        self.head = build_linear(weights["embed"], None, mode, act, name="lm_head", options=options)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed[tokens]
        for fc, proj in zip(self.fc, self.proj, strict=True):
            z = nn.functional.layer_norm(h.float(), h.shape[-1:]).to(self.act)
            h = h + proj(nn.functional.gelu(fc(z), approximate="tanh"))
        z = nn.functional.layer_norm(h.float(), h.shape[-1:]).to(self.act)
        return self.head(z).float()


def random_stack_weights(shape: StackShape, seed: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    g = torch.Generator(device=device).manual_seed(seed)

    def rnd(*size: int, std: float) -> torch.Tensor:
        return torch.randn(size, generator=g, device=device) * std

    # logits = ln(h) @ embed.T: std 3/sqrt(hidden) gives logits of std ~3, a spread-out next-token distribution
    w = {"embed": rnd(shape.vocab, shape.hidden, std=3 / math.sqrt(shape.hidden))}
    for i in range(shape.layers):
        w[f"{i}.fc.w"] = rnd(shape.ffn, shape.hidden, std=1 / math.sqrt(shape.hidden))
        w[f"{i}.fc.b"] = rnd(shape.ffn, std=0.02)
        w[f"{i}.proj.w"] = rnd(shape.hidden, shape.ffn, std=1 / math.sqrt(shape.ffn))
        w[f"{i}.proj.b"] = rnd(shape.hidden, std=0.02)
    return w


def _summarise(ref: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    kl = next_token_kl(ref, test)
    return {"kl_mean": kl.mean().item(), "kl_max": kl.max().item(), **logit_deltas(ref, test)}


def random_stack_kl(
    modes: Sequence[str],
    *,
    reference: str = "bf16",
    shape: StackShape | None = None,
    rows: int = 64,
    seq: int = 8,
    seed: int = 0,
    device: torch.device | str = "cpu",
    compute_dtype: str | None = None,
    options: QuantOptions | None = None,
) -> dict[str, dict[str, float]]:
    """KL of next-token distributions of each mode against `reference` on one random stack; rows x seq tokens.

    The logits of every position are compared (rows * seq distributions). Quantized modes run with activations
    of `compute_dtype` (default: the engine's default for the device)."""
    shape = shape or StackShape()
    dev = torch.device(device)
    weights = random_stack_weights(shape, seed, dev)
    tokens = torch.randint(0, shape.vocab, (rows, seq), generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    out: dict[str, dict[str, float]] = {}
    ref_logits: torch.Tensor | None = None
    for mode in [reference, *[m for m in modes if m != reference]]:
        check_mode(mode)
        act = activation_dtype(mode, compute_dtype, dev)
        stack = _RandomStack(weights, shape, mode, act, options or QuantOptions())
        with torch.no_grad():
            logits = stack(tokens).reshape(-1, shape.vocab)
        if ref_logits is None:
            ref_logits = logits
        if mode in modes:
            out[mode] = _summarise(ref_logits, logits)
    return out


def model_mode_kl(
    make_model: Callable[[str], nn.Module],
    tokens: torch.Tensor,
    modes: Sequence[str],
    *,
    reference: str = "bf16",
) -> dict[str, dict[str, float]]:
    """KL against `reference` for a real model: `make_model(mode)` returns a module mapping tokens [B, T] to logits
    [B, T, V] (e.g. a lambda around NativeStarcoder2.random with a fixed seed); all positions are compared."""
    with torch.no_grad():
        ref = make_model(reference)(tokens).float()
    ref = ref.reshape(-1, ref.shape[-1])
    out = {}
    for mode in modes:
        with torch.no_grad():
            logits = make_model(mode)(tokens).float()
        logits = logits.reshape(-1, logits.shape[-1])
        out[mode] = _summarise(ref, logits)
    return out
