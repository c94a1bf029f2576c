"""Layer-level benchmark of the quantized linears on StarCoder2-3B's exact linear shapes.

Per layer (30): qkv 3072->3584, o 3072->3072, c_fc 3072->12288, c_proj 12288->3072; plus the head 3072->49152.
Random weights (std 0.02) and random biases; every mode is built from the same bf16 weights.
  prefill: M = 8192 tokens (2 x 4096) through all 121 linears, CUDA events, median of --reps.
  decode:  M = 1 and M = 32 through all 121 linears, captured once in a CUDA graph, median of graph replays.
  memory:  bytes of the modules' actual tensors.
  check:   each mode's kernels against its fp32 reference (dequantize, then matmul) on the first layer, fresh
           random inputs at M = 1, 32 and 8192 (rel. Frobenius error).
Attention, norms, GELU and residuals are untouched by quantization and add the same time to every mode, so
whole-model ratios lie between these linear-only ratios and 1.

Usage (GPU): PYTHONPATH=cuda python bench/quant_linears.py --out bench/results/quant-linears-h100.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from records import git_commit, write_json_atomic

from evalpipe_engine.quant import QuantOptions, build_linear, linear_weight_bytes

SCHEMA_VERSION = 1
HIDDEN = 3072
LAYER_SHAPES = [("qkv", 3584, 3072), ("o", 3072, 3072), ("c_fc", 12288, 3072), ("c_proj", 3072, 12288)]
HEAD = ("head", 49152, 3072)
TARGETS = {
    "prefill_ratio_max": {"fp8": 0.70, "int8": 1.05, "nf4": 1.10, "nf4-fp32": 1.5},
    "decode1_speedup_min": {"int8": 1.7, "nf4": 2.5, "fp8": 1.6},
    "memory_ratio_max": {"int8": 0.52, "nf4": 0.30},
}
# name -> (mode, activation dtype, options)
VARIANTS: dict[str, tuple[str, torch.dtype, QuantOptions]] = {
    "bf16": ("bf16", torch.bfloat16, QuantOptions()),
    "int8": ("int8", torch.bfloat16, QuantOptions(int8_prefill="w8a8")),
    "int8-dequant": ("int8", torch.bfloat16, QuantOptions(int8_prefill="dequant")),
    "nf4": ("nf4", torch.bfloat16, QuantOptions()),
    "nf4-fp32": ("nf4", torch.float32, QuantOptions(fp32_matmul="tf32")),
    "fp8": ("fp8", torch.bfloat16, QuantOptions()),
}


def shapes(layers: int) -> list[tuple[str, int, int]]:
    return [(f"l{i}.{n}", o, k) for i in range(layers) for n, o, k in LAYER_SHAPES] + [HEAD]


def make_weights(layers: int, seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    out = []
    for name, n, k in shapes(layers):
        w = (torch.randn((n, k), generator=g, device="cuda") * 0.02).to(torch.bfloat16)
        b = (torch.randn((n,), generator=g, device="cuda") * 0.02).to(torch.bfloat16)
        out.append((name, w, b))
    return out


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.float() - ref.float()).norm() / ref.float().norm()).item()


def time_prefill(mods: list[torch.nn.Module], xs: dict[int, torch.Tensor], reps: int) -> list[float]:
    def run() -> None:
        for m in mods:
            m(xs[m.in_features if hasattr(m, "in_features") else m.weight.shape[1]])

    run()
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        run()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return times


def time_graph(mods: list[torch.nn.Module], xs: dict[int, torch.Tensor], reps: int) -> list[float]:
    def run() -> None:
        for m in mods:
            m(xs[m.in_features if hasattr(m, "in_features") else m.weight.shape[1]])

    run()  # autotune and compile outside the capture
    run()
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        run()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    del g
    return times


MODEL_VARIANTS: dict[str, tuple[str, str | None]] = {
    "bf16": ("bf16", None),
    "int8": ("int8", None),
    "nf4": ("nf4", None),
    "nf4-fp32": ("nf4", "fp32"),
    "fp8": ("fp8", None),
}


def whole_model(names: list[str], reps: int, steps: int, attn: str) -> dict[str, dict]:
    """Our StarCoder2-3B (model.py, random weights) in each mode: score_minibatch on 2 x 4096 tokens (the prefill
    the perplexity stage runs, LM head included) and eager KV-cache decode steps at batch 1 and 32 after a
    256-token prompt. Each mode uses the quant defaults (QuantOptions())."""
    from evalpipe_engine.model import NativeStarcoder2, Starcoder2Config

    cfg = Starcoder2Config.preset("3b")
    out: dict[str, dict] = {}
    for name in [*names, "bf16-repeat"]:  # bf16 again last: the spread of the baseline itself
        if name.removesuffix("-repeat") not in MODEL_VARIANTS:
            continue
        mode, cdt = MODEL_VARIANTS[name.removesuffix("-repeat")]
        kw = {"compute_dtype": cdt} if cdt else {}
        try:
            one = _one_model(NativeStarcoder2, cfg, mode, attn, kw, reps, steps)
        except Exception as e:  # record the failure of one mode, measure the others
            out[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
            print(f"[model {name}] FAILED {out[name]['error']}", file=sys.stderr, flush=True)
            torch.cuda.empty_cache()
            continue
        out[name] = one
        print(
            f"[model {name}] prefill {one['prefill_2x4096_ms']:.1f} ms, decode b1 {one['decode_b1_step_ms']:.2f} "
            f"ms/step, b32 {one['decode_b32_step_ms']:.2f} ms/step",
            file=sys.stderr,
            flush=True,
        )
        torch.cuda.empty_cache()
    base = out.get("bf16")
    if base and "error" not in base:
        for rec in out.values():
            if "error" in rec:
                continue
            rec["prefill_ratio"] = round(rec["prefill_2x4096_ms"] / base["prefill_2x4096_ms"], 4)
            rec["memory_ratio"] = round(rec["weight_bytes"] / base["weight_bytes"], 4)
            for n in (1, 32):
                rec[f"decode_b{n}_speedup"] = round(base[f"decode_b{n}_step_ms"] / rec[f"decode_b{n}_step_ms"], 4)
    return out


def _one_model(cls: Any, cfg: Any, mode: str, attn: str, kw: dict, reps: int, steps: int) -> dict:
    """One mode of whole_model: prefill timing (CUDA events, median) and eager decode steps (wall clock)."""
    model = cls.random(cfg, device="cuda", seed=0, quant=mode, attn=attn, **kw)
    rec: dict = {"weight_bytes": model.facts.weight_bytes}
    ids = torch.randint(0, cfg.vocab_size, (2, 4096), device="cuda")
    model.score_minibatch(ids)
    torch.cuda.synchronize()
    t = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        model.score_minibatch(ids)
        b.record()
        b.synchronize()
        t.append(a.elapsed_time(b))
    rec["prefill_2x4096_ms"] = statistics.median(t)
    prompt = torch.randint(0, cfg.vocab_size, (256,), device="cuda")
    for n in (1, 32):
        dec = model.open_decoder(prompt, n)
        tok = torch.randint(0, cfg.vocab_size, (n,), device="cuda")
        for _ in range(3):
            dec.step(tok)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            dec.step(tok)
        torch.cuda.synchronize()
        step_ms = (time.perf_counter() - t0) * 1000 / steps
        rec[f"decode_b{n}_step_ms"] = step_ms
        rec[f"decode_b{n}_tokens_per_s"] = round(n * 1000 / step_ms, 1)
        del dec
    del model
    return rec


def versions() -> dict[str, str]:
    import triton

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
    }
    try:
        out["driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out["driver"] = "unknown"
    out["git_commit"] = git_commit()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--prefill-m", type=int, default=8192)
    ap.add_argument("--decode-m", default="1,32")
    ap.add_argument("--reps", type=int, default=5, help="prefill repetitions")
    ap.add_argument("--graph-reps", type=int, default=30, help="decode graph replays")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="store_true", help="also time our whole StarCoder2-3B (model.py) per mode")
    ap.add_argument("--model-attn", default="sdpa", help="one attention backend for every mode (sdpa runs fp32 too)")
    ap.add_argument("--model-steps", type=int, default=20)
    ap.add_argument("--commit", default=os.environ.get("EVALPIPE_COMMIT", ""), help="git commit of the code timed")
    ap.add_argument("--out", help="write the JSON record here (atomically)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("quant_linears: needs a CUDA GPU (this benchmark times kernels); none is visible", file=sys.stderr)
        return 2
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"quant_linears: unknown variant(s) {unknown}: use {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    if "bf16" not in names:
        names.insert(0, "bf16")
    decode_ms = [int(m) for m in args.decode_m.split(",")]
    weights = make_weights(args.layers, args.seed)
    gen = torch.Generator(device="cuda").manual_seed(args.seed + 1)
    results: dict[str, dict] = {}
    for name in names:
        mode, act, opts = VARIANTS[name]
        t0 = time.time()
        mods = [build_linear(w, b, mode, act, name=n, options=opts) for n, w, b in weights]
        build_s = time.time() - t0
        rec: dict = {
            "mode": mode,
            "act_dtype": str(act).removeprefix("torch."),
            "options": opts.__dict__,
            "build_seconds": round(build_s, 2),
            "weight_bytes": sum(linear_weight_bytes(m) for m in mods),
        }
        if mode != "bf16":
            errs = {}
            for m in [*mods[:4], mods[-1]]:
                for rows in [1, 32, args.prefill_m]:
                    x = torch.randn((rows, m.in_features), generator=gen, device="cuda").to(act)
                    errs[f"{m.name}@M={rows}"] = round(rel_err(m(x), m.reference2d(x)), 6)
            rec["kernel_vs_reference_rel_err"] = errs
            rec["kernel_vs_reference_max"] = max(errs.values())
        xs = {k: torch.randn((args.prefill_m, k), generator=gen, device="cuda").to(act) for k in (3072, 12288)}
        t = time_prefill(mods, xs, args.reps)
        rec["prefill_ms"] = statistics.median(t)
        rec["prefill_ms_all"] = [round(v, 3) for v in t]
        del xs
        for m_rows in decode_ms:
            xs = {k: torch.randn((m_rows, k), generator=gen, device="cuda").to(act) for k in (3072, 12288)}
            t = time_graph(mods, xs, args.graph_reps)
            rec[f"decode_m{m_rows}_ms"] = statistics.median(t)
            rec[f"decode_m{m_rows}_spread_ms"] = [round(min(t), 4), round(max(t), 4)]
        results[name] = rec
        print(
            f"[{name}] built {build_s:.1f}s prefill {rec['prefill_ms']:.2f} ms "
            + " ".join(f"decode M={m} {rec[f'decode_m{m}_ms']:.3f} ms" for m in decode_ms),
            file=sys.stderr,
            flush=True,
        )
        del mods
        torch.cuda.empty_cache()
    base = results["bf16"]
    for rec in results.values():
        rec["prefill_ratio"] = round(rec["prefill_ms"] / base["prefill_ms"], 4)
        rec["memory_ratio"] = round(rec["weight_bytes"] / base["weight_bytes"], 4)
        for m_rows in decode_ms:
            rec[f"decode_m{m_rows}_speedup"] = round(base[f"decode_m{m_rows}_ms"] / rec[f"decode_m{m_rows}_ms"], 4)
            rec[f"decode_m{m_rows}_linear_tokens_per_s"] = round(m_rows * 1000 / rec[f"decode_m{m_rows}_ms"], 1)
    verdicts = {}
    for key, per in TARGETS.items():
        for variant, target in per.items():
            if variant not in results:
                continue
            r = results[variant]
            value = {
                "prefill_ratio_max": r["prefill_ratio"],
                "memory_ratio_max": r["memory_ratio"],
                "decode1_speedup_min": r.get("decode_m1_speedup", float("nan")),
            }[key]
            ok = value <= target if key.endswith("_max") else value >= target
            verdicts[f"{variant}:{key}"] = {"value": value, "target": target, "met": bool(ok)}
    del weights
    torch.cuda.empty_cache()
    model_results = whole_model(names, args.reps, args.model_steps, args.model_attn) if args.model else None
    record = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quant_linears",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "card": torch.cuda.get_device_name(),
        "capability": list(torch.cuda.get_device_capability()),
        "versions": {**versions(), **({"git_commit": args.commit} if args.commit else {})},
        "shapes": {
            "layers": args.layers,
            "per_layer": LAYER_SHAPES,
            "head": HEAD,
            "prefill_m": args.prefill_m,
            "decode_m": decode_ms,
        },
        "method": "prefill: CUDA events around all linears, median; decode: CUDA graph of all linears, median "
        "replay; weights random N(0, 0.02) bf16; linear layers only (attention/norms unchanged by quant)",
        "results": results,
        "targets": verdicts,
        "whole_model": model_results,
    }
    if args.out:
        write_json_atomic(args.out, record, indent=2)
    print(
        f"{'variant':<10} {'prefill':>8} {'ratio':>6} "
        + " ".join(f"{'dec M=' + str(m):>9} {'x':>5}" for m in decode_ms)
        + f" {'mem':>5} {'maxerr':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:<10} {r['prefill_ms']:8.2f} {r['prefill_ratio']:6.3f} "
            + " ".join(f"{r[f'decode_m{m}_ms']:9.3f} {r[f'decode_m{m}_speedup']:5.2f}" for m in decode_ms)
            + f" {r['memory_ratio']:5.3f} {r.get('kernel_vs_reference_max', 0):8.5f}"
        )
    for k, v in verdicts.items():
        print(f"{k}: {v['value']} vs {v['target']} -> {'met' if v['met'] else 'MISSED'}")
    for name, r in (model_results or {}).items():
        if "prefill_ratio" not in r:
            print(f"model {name:<9} {r.get('error', 'no baseline')}")
            continue
        print(
            f"model {name:<9} prefill {r['prefill_2x4096_ms']:7.1f} ms x{r['prefill_ratio']:.3f}  decode b1 "
            f"{r['decode_b1_tokens_per_s']:7.1f} tok/s x{r['decode_b1_speedup']:.2f}  b32 "
            f"{r['decode_b32_tokens_per_s']:7.1f} tok/s x{r['decode_b32_speedup']:.2f}  mem x{r['memory_ratio']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
