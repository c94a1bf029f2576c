"""Static batches against continuous batching, through the generate op's own decoding loop (generation.decode_prompts:
sampling, stop checks and per-sample partials included), at realistic lengths, on the GPU, in one call.

With random weights nothing stops by itself, so each sample's stop length is drawn from a fixed, seeded log-normal
(median 100 new tokens, sigma 1.0: about 5% would pass 512, and those stop at 512, the budget) and forced as that
sample's max_new_tokens. 164 prompts (lengths seeded log-normal, median 125 tokens, as bench/llama_h200.py) x n
samples, temperature 0.8, top_p 0.95, and eight stop strings as long as the HumanEval list's that random text does
not reach (so the byte-level stop check runs on every token, as in an evaluation). Per mode `continuous` runs the
engine's default (one batch of as many rows as memory allows, finished rows refilled from the queue); for the
baseline mode (the first) the same samples also run `static` (the engine before: groups of --rows consecutive
samples, each decoded until its longest sample ends) and `continuous` at --rows. Reports output tokens/s, wall
seconds, peak memory, the rows and the share of the loop's wall time the GPU spends outside the model steps,
admission prefills and token choices (generation.HostClock, CUDA events: host code and the small copies between).
The baseline mode also runs continuous without overlap (each step launched only after the host has seen the
previous step's tokens).

    python bench/continuous_batching.py --modes bf16,fp8,int8,nf4 --out bench/results/cb-h200-DATE.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefill_matrix import environment
from records import git_commit, write_json_atomic

from evalpipe_engine.devtools.random_weights import random_state_dict
from evalpipe_engine.generation import DEFAULT_STOP, HostClock, PromptSamples, decode_prompts
from evalpipe_engine.loading import LoadedModel
from evalpipe_engine.models import NATIVE_ARCHITECTURES, native_config
from evalpipe_engine.presets import build_tokenizer

CONFIGS = Path(__file__).resolve().parents[1] / "cuda" / "evalpipe_engine" / "configs"
# As long as the HumanEval stops, starting with a NUL byte: checked on every token, never met by random text.
UNREACHED_STOPS = tuple("\x00" + s[1:] for s in DEFAULT_STOP)


def log(msg: str) -> None:
    print(f"[cb-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def lognormal_ints(n: int, median: float, sigma: float, lo: int, hi: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=g, dtype=torch.float64)
    return [int(min(hi, max(lo, round(median * math.exp(sigma * float(x)))))) for x in z]


def prompt_ids(vocab: int, seed: int) -> list[list[int]]:
    """The 164 prompts' token ids: lengths from a seeded log-normal (median 125 tokens), random tokens."""
    prompt_lengths = lognormal_ints(164, 125, 0.45, 32, 448, seed)
    g = torch.Generator().manual_seed(seed + 2)
    return [torch.randint(0, vocab, (length,), generator=g).tolist() for length in prompt_lengths]


def workload(vocab: int, n: int, seed: int) -> list[PromptSamples]:
    """One PromptSamples per sample (each with its own forced stop length), in prompt order."""
    stops = lognormal_ints(164 * n, 100, 1.0, 1, 512, seed + 1)
    out: list[PromptSamples] = []
    for p, ids in enumerate(prompt_ids(vocab, seed)):
        for s in range(n):
            out.append(PromptSamples(f"p{p}/s{s}", ids, [s], stops[p * n + s], seed=0, seed_key=f"p{p}"))
    return out


def run(
    loaded: LoadedModel,
    work: list[PromptSamples],
    rows: int | None,
    overlap: bool = True,
    temperature: float = 0.8,
) -> dict[str, Any]:
    tokens = 0

    def emit(event: str, data: dict[str, Any]) -> None:
        nonlocal tokens
        tokens += int(data["n_new_tokens"])

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    clock = HostClock()
    t0 = time.perf_counter()
    count, batch_rows = decode_prompts(
        loaded,
        work,
        temperature=temperature,
        top_p=0.95,
        stop=UNREACHED_STOPS,
        max_batch_rows=rows,
        emit=emit,
        clock=clock,
        overlap=overlap,
    )
    torch.cuda.synchronize()
    s = time.perf_counter() - t0
    return {
        "samples": count,
        "batch_rows": batch_rows,
        "output_tokens": tokens,
        "seconds": s,
        "output_tokens_per_s": tokens / s,
        "steps": clock.steps,
        "host_share": 1.0 - clock.busy_s() / s,
        "device_s_by_work": clock.busy_by_work(),
        "calls_by_work": clock.calls_by_work(),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def load_mode(cfg: Any, sd: dict[str, torch.Tensor], mode: str) -> LoadedModel:
    """The native model of cfg on the GPU in precision `mode` (flash attention), as the engine loads it."""
    _, cls = NATIVE_ARCHITECTURES[cfg.architecture]
    model = cls.from_state_dict(cfg, sd, device="cuda", quant=mode, attn="flash")
    return LoadedModel(
        backend=model,
        tokenizer=build_tokenizer(),
        facts=model.facts,
        provenance=None,  # type: ignore[arg-type]
        quant=mode,
        attn="flash",
        compute_dtype=None,
        eos_token_ids=(),
        load_seconds=0.0,
    )


def print_table(record: dict[str, Any]) -> None:
    """The record as a table on stdout, each mode's rows against the baseline mode's static batches."""
    modes = record["modes"]
    base = next(iter(modes.values())).get("static")
    print(f"{'mode':6} {'how':16} {'rows':>5} {'out tok/s':>10} {'vs static':>9} {'host':>6} {'peak GiB':>8}")
    for mode, row in modes.items():
        for how, r in row.items():
            if not isinstance(r, dict):
                continue
            ratio = r["output_tokens_per_s"] / base["output_tokens_per_s"] if base else float("nan")
            print(
                f"{mode:6} {how:16} {r['batch_rows']:5d} {r['output_tokens_per_s']:10.0f} {ratio:9.2f}"
                f" {r['host_share']:6.1%} {r['peak_gib']:8.1f}"
            )
    print(f"\n{'mode':6} {'how':16} {'work':13} {'calls':>6} {'device s':>9}", end="")
    print(f" {'median ms':>9} {'max ms':>8} {'host s':>7}")
    for mode, row in modes.items():
        for how, r in row.items():
            if not isinstance(r, dict):
                continue
            for work, c in r["calls_by_work"].items():
                print(
                    f"{mode:6} {how:16} {work:13} {c['calls']:6d} {r['device_s_by_work'][work]:9.2f}"
                    f" {c['device_ms_median']:9.2f} {c['device_ms_max']:8.1f} {c['host_s']:7.2f}"
                )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="starcoder2-3b")
    parser.add_argument("--modes", default="bf16,fp8")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--rows", type=int, default=256, help="the baseline's max_batch_rows (the engine's before)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cfg = native_config(json.loads((CONFIGS / f"{args.config}.json").read_text()), source=args.config)
    record: dict[str, Any] = {"bench": "continuous-batching", "config": args.config, "commit": git_commit()}
    record["environment"] = environment()
    work = workload(cfg.vocab_size, args.n, seed=5)
    budgets = [w.max_new_tokens for w in work]
    record["workload"] = {
        "prompts": 164,
        "n": args.n,
        "samples": len(work),
        "stop_length": "log-normal, median 100, sigma 1.0, clipped to [1, 512] (seed 6)",
        "mean_new_tokens": sum(budgets) / len(budgets),
        "share_at_512": sum(b == 512 for b in budgets) / len(budgets),
        "temperature": 0.8,
        "top_p": 0.95,
        "baseline_max_batch_rows": args.rows,
        "stops": "8 unreached stop strings (NUL + the HumanEval stops' tails)",
    }
    record["modes"] = {}
    log(json.dumps(record["workload"]))
    sd = random_state_dict(cfg, torch.device("cuda"), torch.float32, seed=0, residual_scaled=True)
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        loaded = load_mode(cfg, sd, mode)
        model = loaded.backend
        run(loaded, work[: args.rows], args.rows)  # compile, autotune and capture outside the timings
        row: dict[str, Any] = {}
        row["continuous"] = run(loaded, work, None)
        log(f"{mode} continuous {json.dumps(row['continuous'])}")
        if mode == modes[0]:
            row["continuous_no_overlap"] = run(loaded, work, None, overlap=False)
            log(f"{mode} continuous without overlap {json.dumps(row['continuous_no_overlap'])}")
            row[f"continuous_{args.rows}"] = run(loaded, work, args.rows)
            log(f"{mode} continuous at {args.rows} {json.dumps(row[f'continuous_{args.rows}'])}")
            model.admits_rows = False  # type: ignore[misc]
            row["static"] = run(loaded, work, args.rows)
            log(f"{mode} static {json.dumps(row['static'])}")
            model.admits_rows = True  # type: ignore[misc]
            row["speedup"] = row["continuous"]["output_tokens_per_s"] / row["static"]["output_tokens_per_s"]
        record["modes"][mode] = row
        write_json_atomic(args.out, record)
        print_table(record)
        del model, loaded
        torch.cuda.empty_cache()
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
