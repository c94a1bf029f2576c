"""Train a small StarCoder2-architecture model on the Python code of this interpreter's library paths (standard
library + installed packages) and write it as a checkpoint directory our engine loads, with its training record.

    # the embedded default (cuda/evalpipe_engine/trained/tiny-starcoder2/), on a CUDA machine:
    python3 bench/train_reference.py --size tiny --time-budget 100 --seed 0 --out /tmp/trained-tiny
    # the reference model of the quality-cost table (~91M parameters; not committed):
    python3 bench/train_reference.py --size reference --time-budget 300 --seed 0 \\
        --tokenizer cuda/evalpipe_engine/trained/tiny-starcoder2/tokenizer.json --out /tmp/trained-reference
    # a CPU smoke of the script itself (a few steps on a 2 MB sample):
    python3 bench/train_reference.py --size tiny --steps 3 --max-corpus-bytes 2000000 --device cpu --out /tmp/t

Writes into --out: config.json, model.safetensors, tokenizer.json, tokenizer_config.json and training.json (the
exact command, corpus (files, bytes, tokens, sha256 of the file list), tokenizer, seed, steps, tokens seen, the
loss curve, held-out perplexity, versions, card), rewritten every --save-every seconds during training so that a
run cut off still leaves a loadable checkpoint and its record.

Reproducibility: the corpus order, the held-out split, the tokenizer's training sample, the initialisation and
every training window follow from the files and --seed. With --time-budget the step count is fixed after the
first --probe-steps steps from their measured speed (before any step's learning rate depends on it) and written
to training.json as `steps`: `--steps N` with the same seed repeats the run. CPU runs repeat bit for bit; CUDA
runs repeat to the nondeterminism of its kernels (atomics in backward), not bit for bit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))

from records import git_commit, write_json_atomic
from reference_corpus import Corpus, collect_corpus, library_roots, tokenizer_sha256, train_tokenizer
from reference_data import WindowSampler, cached_streams, held_out_windows
from reference_model import SIZES, SizePreset, build_model, config_dict, write_checkpoint
from tokenizers import Tokenizer

from evalpipe_engine.presets import EOS_TOKEN

SCHEMA_VERSION = 1
RECORD_NAME = "training.json"
# No trailing newline: the tokenizer merges a newline with the indentation after it, so a prompt ending in a bare
# newline tells the model the next line starts at column 0 (HumanEval's prompts are stripped for the same reason).
SAMPLE_PROMPTS: tuple[str, ...] = (
    "def fibonacci(n):",
    "import os\n\n\ndef list_python_files(root):",
    "class Stack:\n    def __init__(self):",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--out", required=True, type=Path, help="the checkpoint directory to write")
    ap.add_argument("--seed", type=int, default=0)
    budget = ap.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="optimizer steps")
    budget.add_argument("--time-budget", type=float, help="seconds of training; the step count is fixed from it")
    ap.add_argument("--probe-steps", type=int, default=20, help="with --time-budget: steps timed to fix the count")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--tokenizer", type=Path, help="use this tokenizer.json instead of training one")
    ap.add_argument("--tokenizer-bytes", type=int, default=32 << 20, help="training sample of the BPE merges")
    ap.add_argument("--max-corpus-bytes", type=int, help="a deterministic sample of the corpus (content-hash order)")
    ap.add_argument("--cache", type=Path, help="a directory to keep the token streams in between runs")
    ap.add_argument("--batch", type=int, help="sequences per step (default: the size's)")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the size's)")
    ap.add_argument("--context", type=int, help="training length = max_position_embeddings (default: the size's)")
    ap.add_argument("--eval-tokens", type=int, default=1 << 20, help="held-out tokens scored at the end")
    ap.add_argument("--log-every", type=int, default=10, help="steps per loss-curve point")
    ap.add_argument("--save-every", type=float, default=60.0, help="seconds between checkpoint writes")
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error("--steps must be at least 1")
    if args.time_budget is not None and args.time_budget <= 0:
        ap.error("--time-budget must be positive")
    return args


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_reference: --device cuda was given but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def held_out_nll(model: torch.nn.Module, windows: torch.Tensor, device: torch.device, rows: int) -> tuple[float, int]:
    """Σ NLL (nats) and scored tokens over the held-out windows (every token after each window's first)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, windows.shape[0], rows):
        batch = windows[start : start + rows].to(device)
        with autocast(device):
            logits = model(input_ids=batch[:, :-1]).logits
        nll = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
        total += float(nll)
        count += batch[:, 1:].numel()
    model.train()
    return total, count


def autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def greedy_samples(model: torch.nn.Module, tok: Tokenizer, device: torch.device, new_tokens: int = 48) -> list[dict]:
    """Greedy completions of a few prompts (no cache: short and only for the record)."""
    model.eval()
    eos = tok.token_to_id(EOS_TOKEN)
    out = []
    for prompt in SAMPLE_PROMPTS:
        ids = [eos, *tok.encode(prompt, add_special_tokens=False).ids]
        start = len(ids)
        for _ in range(new_tokens):
            with autocast(device):
                logits = model(input_ids=torch.tensor([ids], device=device)).logits
            nxt = int(logits[0, -1].float().argmax())
            if nxt == eos:
                break
            ids.append(nxt)
        out.append({"prompt": prompt, "completion": tok.decode(ids[start:])})
    model.train()
    return out


def load_or_train_tokenizer(args: argparse.Namespace, corpus: Corpus) -> tuple[Tokenizer, str]:
    if args.tokenizer is not None:
        return Tokenizer.from_file(str(args.tokenizer)), f"given: {args.tokenizer}"
    tok = train_tokenizer(corpus.train, args.vocab_size, args.tokenizer_bytes)
    return tok, f"trained here on the first {args.tokenizer_bytes} bytes of the training files (content-hash order)"


def versions() -> dict[str, str]:
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "git_commit": git_commit(),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    device = resolve_device(args.device)
    size: SizePreset = SIZES[args.size]
    if args.context:
        size = replace(size, context=args.context)
    batch = args.batch or size.batch
    peak_lr = args.lr or size.lr
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    log(f"reading the corpus under {', '.join(library_roots())}")
    corpus = collect_corpus(args.max_corpus_bytes)
    tok, tokenizer_origin = load_or_train_tokenizer(args, corpus)
    tok_sha = tokenizer_sha256(tok)
    train_ids, held_ids = cached_streams(tok, corpus.train, corpus.held_out, corpus.list_sha256 + tok_sha, args.cache)
    desc = corpus.describe()
    desc["max_bytes"] = args.max_corpus_bytes
    desc["train"]["tokens"] = int(train_ids.size)  # type: ignore[index]
    desc["held_out"]["tokens"] = int(held_ids.size)  # type: ignore[index]
    log(f"corpus: {json.dumps(desc['train'])} train, {json.dumps(desc['held_out'])} held out ({elapsed(started)})")

    config = config_dict(size, tok.get_vocab_size())
    model = build_model(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=peak_lr,
        betas=(0.9, 0.95),
        eps=1e-8,
        fused=device.type == "cuda",
    )
    sampler = WindowSampler(train_ids, size.context, batch, args.seed, device)
    windows = held_out_windows(held_ids, size.context, args.eval_tokens)
    save_dtype = getattr(torch, size.save_dtype)

    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "train_reference",
        "command": "python3 bench/train_reference.py " + shlex.join(argv),
        "size": args.size,
        "size_preset": asdict(size),
        "config": config,
        "n_params": n_params,
        "seed": args.seed,
        "device": str(device),
        "card": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "corpus": desc,
        "tokenizer": {"origin": tokenizer_origin, "vocab_size": tok.get_vocab_size(), "sha256": tok_sha},
        "training": {
            "batch": batch,
            "context": size.context,
            "tokens_per_step": batch * size.context,
            "peak_lr": peak_lr,
            "warmup_steps": size.warmup_steps,
            "schedule": "linear warm-up, cosine to 0.1 x peak",
            "optimizer": "AdamW betas (0.9, 0.95), weight decay 0.1 on matrices, gradient clip 1.0",
            "precision": "bf16 autocast, fp32 master weights" if device.type == "cuda" else "fp32",
            "steps": args.steps,
            "time_budget_s": args.time_budget,
        },
        "loss_curve": [],
        "status": "training",
    }
    out: Path = args.out
    record_path = out / RECORD_NAME

    def save(status: str) -> None:
        record["status"] = status
        write_checkpoint(out, model, config, tok, save_dtype)
        write_json_atomic(record_path, record, indent=1)

    total = args.steps
    step = 0
    acc = torch.zeros((), device=device)
    acc_n = 0
    t_train = time.perf_counter()
    t_probe = t_train
    last_save = t_train
    model.train()
    while total is None or step < total:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total or 10**9, peak_lr, size.warmup_steps)
        x = sampler.next()
        with autocast(device):
            logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        acc += loss.detach()
        acc_n += 1
        step += 1
        if total is None and step == 2:
            sync(device)
            t_probe = time.perf_counter()  # the first steps include warm-up; time the ones after them
        if total is None and step == args.probe_steps + 2:
            sync(device)
            per_step = (time.perf_counter() - t_probe) / args.probe_steps
            left = args.time_budget - (time.perf_counter() - t_train)
            total = max(step, step + int(left / per_step))
            if total < size.warmup_steps:
                log(f"warning: {total} steps is fewer than the {size.warmup_steps} warm-up steps")
            record["training"]["steps"] = total
            record["training"]["probe_seconds_per_step"] = per_step
            log(f"{per_step * 1e3:.1f} ms per step: {total} steps in the budget")
        if step % args.log_every == 0 or step == total:
            mean = float(acc) / acc_n
            record["loss_curve"].append({"step": step, "loss": round(mean, 5), "seconds": elapsed_s(t_train)})
            acc.zero_()
            acc_n = 0
            if not math.isfinite(mean):
                save("diverged")
                raise SystemExit(f"train_reference: the loss is {mean} at step {step}; try a lower --lr")
            if step % (args.log_every * 10) == 0:
                log(f"step {step}/{total or '?'} loss {mean:.4f} ({elapsed(t_train)})")
        if time.perf_counter() - last_save > args.save_every:
            record["training"]["steps_done"] = step
            record["training"]["tokens_seen"] = step * batch * size.context
            save("training")
            last_save = time.perf_counter()

    sync(device)
    train_seconds = time.perf_counter() - t_train
    record["training"].update(
        {
            "steps": total,
            "steps_done": step,
            "tokens_seen": step * batch * size.context,
            "train_seconds": round(train_seconds, 2),
            "tokens_per_second": round(step * batch * size.context / train_seconds, 1),
            "corpus_epochs": round(step * batch * size.context / max(1, train_ids.size), 3),
        }
    )
    nll, count = held_out_nll(model, windows, device, max(1, batch // 2))
    record["held_out"] = {
        "windows": int(windows.shape[0]),
        "scored_tokens": count,
        "mean_nll": nll / count,
        "perplexity": math.exp(nll / count),
        "how": f"consecutive {size.context + 1}-token windows over the held-out stream, every token after each "
        "window's first scored (HF transformers forward, the training precision)",
    }
    record["samples"] = greedy_samples(model, tok, device)
    record["total_seconds"] = round(time.perf_counter() - started, 2)
    save("done")
    log(f"held-out perplexity {record['held_out']['perplexity']:.3f} over {count} tokens; wrote {out}")
    print(json.dumps({"out": str(out), "n_params": n_params, "held_out": record["held_out"]}))
    return 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def elapsed_s(since: float) -> float:
    return round(time.perf_counter() - since, 2)


def elapsed(since: float) -> str:
    return f"{elapsed_s(since):.1f} s"


def log(message: str) -> None:
    print(f"train_reference: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
