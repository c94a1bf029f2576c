"""The issue-17 table's full-length generation rows, through the generate op's own decoding loop
(generation.decode_prompts: continuous batching, sampling on the device, stop checks and per-sample partials), on
the GPU, in one call: every sample runs to its whole budget (random weights never stop, and the eight stop strings
are ones random text does not reach, so the byte-level stop check still runs on every token).

The 164 prompts are bench/continuous_batching.py's (seeded log-normal lengths, median 125 tokens). Each case is
`NAME:N:NEW:T`: N samples a prompt, NEW new tokens each, temperature T (0: greedy), top_p 0.95; all 164 x N samples
go to decode_prompts at once, as one engine request does. A warm-up before the cases (164 x 8 samples of 16
tokens: every row bucket) compiles, autotunes and captures outside the timings. Reports output tokens/s, the rows,
the share of wall time outside the device's steps, admissions and token choices, and peak memory; the record is
rewritten after every case.

    python bench/full_length_generation.py --modes bf16 --out bench/results/full-length-h200-DATE.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from continuous_batching import CONFIGS, load_mode, prompt_ids, run
from prefill_matrix import environment
from records import git_commit, write_json_atomic

from evalpipe_engine.devtools.random_weights import random_state_dict
from evalpipe_engine.generation import PromptSamples
from evalpipe_engine.models import native_config

DEFAULT_CASES = "greedy-512:1:512:0,t0.2-256:20:256:0.2,t0.8-256:20:256:0.8,t0.2-512:20:512:0.2,t0.8-512:20:512:0.8"


def log(msg: str) -> None:
    print(f"[full-length {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_case(text: str) -> tuple[str, int, int, float]:
    try:
        name, n, new, temperature = text.split(":")
        return name, int(n), int(new), float(temperature)
    except ValueError as exc:
        raise SystemExit(f"--cases: {text!r} is not NAME:N:NEW:T (e.g. t0.8-256:20:256:0.8)") from exc


def full_length_work(prompts: list[list[int]], n: int, new: int) -> list[PromptSamples]:
    return [PromptSamples(f"p{p}", ids, list(range(n)), new, seed=0) for p, ids in enumerate(prompts)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="starcoder2-3b")
    parser.add_argument("--modes", default="bf16")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated NAME:N:NEW:T")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cases = [parse_case(c) for c in args.cases.split(",") if c]
    cfg = native_config(json.loads((CONFIGS / f"{args.config}.json").read_text()), source=args.config)
    record: dict[str, Any] = {"bench": "full-length-generation", "config": args.config, "commit": git_commit()}
    record["environment"] = environment()
    prompts = prompt_ids(cfg.vocab_size, seed=5)
    record["workload"] = {
        "prompts": len(prompts),
        "prompt_tokens_mean": sum(map(len, prompts)) / len(prompts),
        "top_p": 0.95,
        "stops": "8 unreached stop strings (NUL + the HumanEval stops' tails)",
        "lengths": "every sample to its full budget",
    }
    record["modes"] = {}
    sd = random_state_dict(cfg, torch.device("cuda"), torch.float32, seed=0, residual_scaled=True)
    for mode in [m for m in args.modes.split(",") if m]:
        loaded = load_mode(cfg, sd, mode)
        run(loaded, full_length_work(prompts, 8, 16), None)  # compile, autotune and capture every row bucket
        record["modes"][mode] = {}
        for name, n, new, temperature in cases:
            row = run(loaded, full_length_work(prompts, n, new), None, temperature=temperature)
            row.update(n=n, new_tokens=new, temperature=temperature)
            record["modes"][mode][name] = row
            log(f"{mode} {name} {json.dumps(row)}")
            write_json_atomic(args.out, record)
            print(
                f"{mode:6} {name:12} rows {row['batch_rows']:5d} {row['output_tokens_per_s']:9.0f} out tok/s"
                f"  host {row['host_share']:5.1%}  peak {row['peak_gib']:5.1f} GiB",
                flush=True,
            )
        del loaded
        torch.cuda.empty_cache()
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
