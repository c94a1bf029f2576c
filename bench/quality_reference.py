"""What each precision costs on a trained model (bench/train_reference.py's checkpoint), through our engine's quant
modes: perplexity on held-out Python (the checkpoint's held-out split of the corpus, re-read here) and on the
built-in smoke texts, both through the engine's score op (BOS first, windows of the model's context), and the KL
divergence of next-token distributions against bf16 (and fp32) with top-1 agreement on held-out windows.

    node -e "import('./dist/datasets/smoke-texts.js').then(m => console.log(JSON.stringify(m.SMOKE_TEXTS)))" \\
        > .carry/smoke-texts.json          # the built-in texts, from the built CLI
    PYTHONPATH=cuda python3 bench/quality_reference.py --model /tmp/trained-reference \\
        --texts .carry/smoke-texts.json --out bench/results/quality-reference-h200-2026-12-03.json

The held-out split is recomputed from the interpreter's library paths with the training record's
--max-corpus-bytes: run it on the machine (and interpreter) that trained the model, or the files differ (the
record's file-list hash says whether they match).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from records import git_commit, write_json_atomic
from reference_corpus import collect_corpus

from evalpipe_engine.loading import load_model
from evalpipe_engine.scoring import score

SCHEMA_VERSION = 1
MODES: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8", "fp8", "nf4")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="a checkpoint directory with training.json")
    ap.add_argument("--texts", type=Path, help="the built-in texts as JSON [{name, text}]")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--held-out-files", type=int, default=400, help="held-out files scored for perplexity")
    ap.add_argument("--kl-windows", type=int, default=32, help="held-out windows of the model's context for KL")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--out", type=Path)
    return ap.parse_args(argv)


def perplexity(loaded: Any, texts: list[str], max_length: int) -> dict[str, float]:
    rows = [{"index": i, "text": t} for i, t in enumerate(texts)]
    result = score(loaded, {"rows": rows, "max_length": max_length}, lambda kind, data: None)
    nll = sum(r["nll_sum"] for r in result["rows"])
    tokens = sum(r["n_scored_tokens"] for r in result["rows"])
    n_bytes = sum(r["n_bytes"] for r in result["rows"])
    return {
        "perplexity": math.exp(nll / tokens),
        "bits_per_byte": nll / (math.log(2) * n_bytes),
        "nll_sum": nll,
        "scored_tokens": tokens,
        "rows": len(rows),
    }


def kl_stats(ref: list[torch.Tensor], other: list[torch.Tensor]) -> dict[str, float]:
    """KL(ref || other) per position (nats), mean and max, and how often the argmax agrees."""
    kls, agree, n = [], 0, 0
    for p_log, q_log in zip(ref, other, strict=True):
        kl = (p_log.exp() * (p_log - q_log)).sum(-1)
        kls.append(kl)
        agree += int((p_log.argmax(-1) == q_log.argmax(-1)).sum())
        n += kl.numel()
    allkl = torch.cat(kls)
    return {"kl_mean": float(allkl.mean()), "kl_max": float(allkl.max()), "top1_agreement": agree / n}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    record_path = args.model / "training.json"
    training = json.loads(record_path.read_text())
    corpus = collect_corpus(training["corpus"].get("max_bytes"))
    if corpus.list_sha256 != training["corpus"]["file_list_sha256"]:
        print(
            "quality_reference: warning: this interpreter's corpus differs from the training record's "
            "(file-list sha256): the held-out files are not exactly the model's held-out split",
            file=sys.stderr,
        )
    held_texts = [f.text for f in corpus.held_out[: args.held_out_files]]
    builtin = [t["text"] for t in json.loads(args.texts.read_text())] if args.texts else []
    context = int(training["config"]["max_position_embeddings"])
    modes = [m for m in args.modes.split(",") if m]
    device = args.device
    attn = "flash" if (device == "cuda" or (device == "auto" and torch.cuda.is_available())) else "sdpa"

    kl_seqs: list[torch.Tensor] = []
    loaded0 = None
    results: dict[str, Any] = {}
    logprobs: dict[str, list[torch.Tensor]] = {}
    for mode in modes:
        t0 = time.perf_counter()
        try:
            loaded = load_model({"model": str(args.model), "quant": mode, "attn": attn, "device": device})
        except Exception as exc:  # a mode this card lacks (fp8 before Hopper) is recorded, the others go on
            results[mode] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        if loaded0 is None:
            loaded0 = loaded.describe()
            eos = loaded.facts.bos_token_id or 0
            ids: list[int] = []
            for enc in loaded.tokenizer.encode_batch(held_texts, add_special_tokens=False):
                ids += [eos, *enc.ids]
            stream = torch.tensor(ids)
            kl_seqs = [
                stream[i * context : (i + 1) * context] for i in range(min(args.kl_windows, len(ids) // context))
            ]
        row: dict[str, Any] = {"held_out": perplexity(loaded, held_texts, context)}
        if builtin:
            row["builtin"] = perplexity(loaded, builtin, context)
        logprobs[mode] = [torch.log_softmax(loaded.backend.logits(s.to(loaded.facts.device)), -1) for s in kl_seqs]
        row["weight_bytes"] = loaded.facts.weight_bytes
        row["seconds"] = round(time.perf_counter() - t0, 2)
        results[mode] = row
        print(
            f"{mode:<5} held-out ppl {row['held_out']['perplexity']:.4f}"
            + (f"  built-in ppl {row['builtin']['perplexity']:.4f}" if builtin else ""),
            flush=True,
        )
        del loaded
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    for ref in ("bf16", "fp32"):
        if ref not in logprobs:
            continue
        for mode, lp in logprobs.items():
            if mode != ref:
                results[mode][f"vs_{ref}"] = kl_stats(logprobs[ref], lp)
    for mode, row in results.items():
        if "vs_bf16" in row:
            kl = row["vs_bf16"]
            print(
                f"{mode:<5} KL vs bf16 mean {kl['kl_mean']:.6f} max {kl['kl_max']:.5f} top1 {kl['top1_agreement']:.4f}"
            )

    import tokenizers
    import transformers

    record = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quality_reference",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "card": torch.cuda.get_device_name() if torch.cuda.is_available() and device != "cpu" else "cpu",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "git_commit": git_commit(),
        },
        "command": "python3 bench/quality_reference.py " + " ".join(argv),
        "model": loaded0,
        "attn": attn,
        "held_out_files": len(held_texts),
        "builtin_texts": len(builtin),
        "kl_positions": sum(s.numel() for s in kl_seqs),
        "how": "perplexity through the engine's score op (BOS first, windows of the model's context); KL(ref || mode) "
        "of next-token distributions at every position of the KL windows; every mode loads the same checkpoint",
        "results": results,
        "training_record": training,
    }
    if args.out:
        write_json_atomic(args.out, record, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
