"""The serving benchmark's baseline: our engine's own `generate` op, in this process, on the same prompts the
serving benchmark sends (HumanEval, stripped), greedy, `--max-new-tokens` each, EOS only — the work a server at
concurrency N does when N requests arrive together. Prints one JSON object: output tokens/s of one request of N
prompts decoded as one batch (after one warm-up request), with the card and versions.

    python bench/serving_baseline.py --model DIR --humaneval HumanEval.jsonl.gz --prompts 64 --max-new-tokens 256
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))

from evalpipe_engine.generation import generate
from evalpipe_engine.loading import load_model


def humaneval_prompts(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["prompt"].strip() for line in handle if line.strip()]


def time_generate(loaded: Any, prompts: list[str], max_new_tokens: int) -> dict[str, float]:
    tokens = 0

    def emit(event: str, data: dict[str, Any]) -> None:
        nonlocal tokens
        if event == "partial":
            tokens += int(data["n_new_tokens"])

    params = {
        "requests": [{"key": f"p{i}", "prompt": prompt} for i, prompt in enumerate(prompts)],
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_new_tokens": max_new_tokens,
        "seed": 0,
        "stop": [],
        "max_batch_rows": len(prompts),
    }
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    generate(loaded, params, emit)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "output_tokens": tokens, "output_tokens_per_s": tokens / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--humaneval", required=True)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--quant", default="bf16")
    parser.add_argument("--attn", default="flash")
    args = parser.parse_args()
    loaded = load_model(
        {
            "model": args.model,
            "quant": args.quant,
            "attn": args.attn,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        }
    )
    prompts = humaneval_prompts(args.humaneval)[: args.prompts]
    time_generate(loaded, prompts, args.max_new_tokens)  # warm-up: kernels tuned, graphs captured
    timed = time_generate(loaded, prompts, args.max_new_tokens)
    out = {
        "kind": "serving_baseline",
        "what": (
            f"engine generate op, {len(prompts)} HumanEval prompts in one request, greedy, "
            f"{args.max_new_tokens} new tokens, EOS only"
        ),
        "card": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "quant": args.quant,
        "attn": args.attn,
        "prompts": len(prompts),
        **timed,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
