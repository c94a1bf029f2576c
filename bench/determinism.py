"""What the deterministic (batch-invariant) engine costs, and what it buys (invariant.py, docs/determinism.md).

Part `speed`, per precision, on random full-size StarCoder2-3B weights, fast path and deterministic mode of the SAME
model object in the same process (set_deterministic), alternating, bf16 first:
  - prefill tokens/s of 2 x 4096 tokens (score_minibatch: the layers, the head and the log-softmax);
  - decode tokens/s at batch 1 and 64 (the engine's StaticDecoder with CUDA graphs, prompts of 512 tokens).
  Before timing, the two modes' outputs are compared (relative error of the log-probs and of the decode logits):
  the deterministic mode computes the same function, associated differently.
Part `greedy`: the 164 HumanEval prompts (tokenized with the tiny preset's tokenizer, whose ids are valid ids of the
3B vocabulary), 256 greedy new tokens each, decoded in consecutive groups of 1, 8, 64 and 256 prompts, as the
generate op batches them; for each mode, how many of the 164 token sequences differ from batch 1's.

Usage (GPU):  PYTHONPATH=cuda python bench/determinism.py speed --out bench/results/determinism-speed.json
              PYTHONPATH=cuda python bench/determinism.py greedy --humaneval HumanEval.jsonl.gz --out ...
Smoke (CPU):  PYTHONPATH=cuda python bench/determinism.py speed --size tiny --device cpu --quants fp32 --steps 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from records import git_commit, write_json_atomic

from evalpipe_engine.model import NativeStarcoder2, Starcoder2Config
from evalpipe_engine.presets import build_tokenizer
from evalpipe_engine.system_info import system_info

CONFIGS = Path(__file__).resolve().parents[1] / "cuda" / "evalpipe_engine" / "configs"
TARGET_COST = 0.15  # issue: the deterministic mode at most 15% slower than the fast path


def config_for(size: str) -> Starcoder2Config:
    if size == "tiny":
        from evalpipe_engine.presets import tiny_starcoder2_config_dict

        return Starcoder2Config.from_dict(tiny_starcoder2_config_dict(vocab_size=512), source="tiny preset")
    return Starcoder2Config.from_file(CONFIGS / f"starcoder2-{size}.json")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_ms(fn: Any, device: torch.device, reps: int) -> float:
    """Median wall time of fn() over `reps` runs (synchronized), after one warm-up run."""
    fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def decode_run(model: NativeStarcoder2, prompts: list[torch.Tensor], steps: int) -> tuple[torch.Tensor, float]:
    """Prefill the prompts, then `steps` decode steps feeding fixed tokens; (last logits, ms per step)."""
    batch = len(prompts)
    dec = model.open_batch_decoder(prompts, [1] * batch, capacity=max(len(p) for p in prompts) + steps + 4)
    tokens = torch.arange(batch, dtype=torch.long) % model.cfg.vocab_size
    for _ in range(3):  # capture + warm replays
        logits = dec.step(tokens)
    sync(model.device)
    t0 = time.perf_counter()
    for _ in range(steps - 3):
        logits = dec.step(tokens)
    sync(model.device)
    ms = (time.perf_counter() - t0) * 1e3 / max(1, steps - 3)
    return logits, ms


def speed(args: argparse.Namespace, device: torch.device, record: dict[str, Any]) -> None:
    cfg = config_for(args.size)
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab_size, (2, args.prefill_len), generator=g).to(device)
    for quant in args.quants.split(","):
        model = NativeStarcoder2.random(cfg, device=device, seed=args.seed, quant=quant, attn=args.attn)
        entry: dict[str, Any] = {"quant": quant, "attn": args.attn}
        outputs: dict[bool, dict[str, torch.Tensor]] = {}
        for det in (False, True, False, True):  # alternate: the second pair is the one reported, the first warms
            model.set_deterministic(det)
            key = "deterministic" if det else "fast"
            cell: dict[str, Any] = {}
            with torch.inference_mode():
                lp = model.score_minibatch(ids)
                ms = timed_ms(lambda m=model: m.score_minibatch(ids), device, args.reps)
            cell["prefill_tokens_per_s"] = round(ids.numel() / ms * 1e3, 1)
            cell["prefill_ms"] = round(ms, 3)
            outs = {"prefill": lp.float().cpu()}
            for batch in args.decode_batches:
                prompts = [
                    torch.randint(0, cfg.vocab_size, (args.prompt,), generator=torch.Generator().manual_seed(b))
                    for b in range(batch)
                ]
                logits, step_ms = decode_run(model, prompts, args.steps)
                cell[f"decode_b{batch}_tokens_per_s"] = round(batch / step_ms * 1e3, 1)
                cell[f"decode_b{batch}_step_ms"] = round(step_ms, 4)
                outs[f"decode_b{batch}"] = logits.float().cpu()
            entry[key] = cell
            outputs[det] = outs
            del lp
        fast, det = entry["fast"], entry["deterministic"]
        entry["cost"] = {  # deterministic time / fast time - 1 (positive: slower)
            k.replace("_tokens_per_s", ""): round(fast[k] / det[k] - 1, 4) for k in fast if k.endswith("tokens_per_s")
        }
        entry["rel_err_vs_fast"] = {
            k: round(relative_error(outputs[True][k], outputs[False][k]), 6) for k in outputs[True]
        }
        record["speed"].append(entry)
        write_json_atomic(args.out, record)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(entry), flush=True)


def humaneval_prompts(path: str, limit: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8") as f:
        return [json.loads(line)["prompt"].strip() for line in f if line.strip()][:limit]


def greedy_tokens(model: NativeStarcoder2, prompts: list[torch.Tensor], batch: int, new_tokens: int) -> list[list[int]]:
    """Greedy continuations of every prompt, decoded in consecutive groups of `batch` prompts (as the generate op
    groups them), rows leaving the batch at EOS."""
    eos = model.cfg.eos_token_id
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch):
        group = prompts[start : start + batch]
        dec = model.open_batch_decoder(group, [1] * len(group), capacity=max(len(p) for p in group) + new_tokens + 1)
        seqs: list[list[int]] = [[] for _ in group]
        live = list(range(len(group)))
        logits = dec.first_logits
        for step in range(new_tokens):
            picks = torch.argmax(logits, dim=-1).tolist()
            keep = []
            for r, tok in zip(range(len(live)), picks, strict=True):
                i = live[r]
                if tok == eos:
                    continue
                seqs[i].append(int(tok))
                keep.append(r)
            if not keep or step == new_tokens - 1:
                break
            if len(keep) != len(live):
                dec.keep(keep)
                live = [live[r] for r in keep]
            logits = dec.step(torch.tensor([seqs[i][-1] for i in live], dtype=torch.long))
        out.extend(seqs)
        del dec
    return out


def greedy(args: argparse.Namespace, device: torch.device, record: dict[str, Any]) -> None:
    cfg = config_for(args.size)
    tokenizer = build_tokenizer()
    texts = humaneval_prompts(args.humaneval, args.limit)
    prompts = [torch.tensor(tokenizer.encode(t, add_special_tokens=False).ids[-args.max_prompt :]) for t in texts]
    model = NativeStarcoder2.random(cfg, device=device, seed=args.seed, quant=args.quants.split(",")[0], attn=args.attn)
    for det in [mode == "deterministic" for mode in args.modes.split(",")]:
        model.set_deterministic(det)
        key = "deterministic" if det else "fast"
        runs: dict[int, list[list[int]]] = {}
        seconds: dict[int, float] = {}
        for batch in args.greedy_batches:
            t0 = time.perf_counter()
            with torch.inference_mode():
                runs[batch] = greedy_tokens(model, prompts, batch, args.new_tokens)
            seconds[batch] = round(time.perf_counter() - t0, 2)
            print(f"{key} batch {batch}: {seconds[batch]} s", flush=True)
        base = min(runs)
        differ = {b: sum(a != c for a, c in zip(runs[b], runs[base], strict=True)) for b in runs if b != base}
        record["greedy"][key] = {
            "prompts": len(prompts),
            "new_tokens": args.new_tokens,
            "differ_from_batch_1": differ,
            "first_differing_prompts": {
                b: [i for i, (a, c) in enumerate(zip(runs[b], runs[base], strict=True)) if a != c][:10] for b in differ
            },
            "tokens_generated": {b: sum(len(s) for s in runs[b]) for b in runs},
            "seconds": seconds,
        }
        write_json_atomic(args.out, record)
        print(json.dumps({key: record["greedy"][key]["differ_from_batch_1"]}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["speed", "greedy"])
    parser.add_argument("--size", default="3b", help="3b, 7b, 15b or tiny")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quants", default="bf16,int8,fp8,nf4")
    parser.add_argument("--attn", default="flash")
    parser.add_argument("--prefill-len", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--decode-batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 64])
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--humaneval", default="HumanEval.jsonl.gz")
    parser.add_argument("--limit", type=int, default=164)
    parser.add_argument("--max-prompt", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--greedy-batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64, 256])
    parser.add_argument("--modes", default="deterministic,fast", help="greedy: the engine modes to run, in order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    info = system_info()
    record: dict[str, Any] = {
        "benchmark": f"determinism-{args.part}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "card": info.get("device", {}).get("name"),
        "versions": {k: info.get(k) for k in ("torch", "triton", "transformers", "python")},
        "driver": info.get("device", {}).get("driver"),
        "model": f"starcoder2-{args.size} (random weights)",
        "target_cost": TARGET_COST,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "speed": [],
        "greedy": {},
    }
    (speed if args.part == "speed" else greedy)(args, device, record)
    write_json_atomic(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
