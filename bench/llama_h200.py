"""The native model families vs HF transformers on the GPU, in one call: full-size random weights of published
configs (default: StarCoder2-3B for the no-regression figures, Qwen2.5-Coder-7B, DeepSeek-Coder-6.7B), bf16 and the
quantized modes. The record is rewritten after every measurement, so a call cut off keeps what it measured.

Per config (`--configs`; HF comparisons for those in `--hf`, quantized modes for those in `--quant-configs`):
1. Parity (HF configs): perplexity of random token rows (2 x 4096) by our bf16 model (flash) against HF's bf16 model
   on the same weights (HF sdpa); `--parity-fp32` adds HF fp32, the reference. Weights ~ N(0, initializer_range),
   o_proj and down_proj scaled by 1/sqrt(2 layers) (devtools.random_weights residual_scaled).
2. Prefill: tokens/s of one 2 x T minibatch for each T in `--ctxs` (ours: score_minibatch, target log-probs on the
   device; HF: its forward with logits, use_cache=False), CUDA events, median of `--iters` after two warm-ups; the
   bf16 matmul ceiling measured in the same call.
3. HumanEval-shape generation: 164 prompts whose lengths are drawn from a seeded log-normal (median 125 tokens,
   sigma 0.45, clipped to [32, 448]: HumanEval's prompts are 115-1360 characters, median 396, about 3.2 characters a
   token), n = `--n` samples each, `--he-new` new tokens, every sample to full length (random weights never stop),
   greedy on the device, decoded by our batch decoder (CUDA graphs) in groups of `--group-rows` rows as the generate
   op groups them (the generate op's per-sample CPU sampling and stop checks are not in this figure).
4. Batch 64 (16 prompts x 4 samples, `--prompt` + `--new` tokens): ours, and HF generate (greedy,
   min_new_tokens = max_new_tokens so no row stops early) for HF configs; steady seconds per step after warm-up and
   graph capture; batch-1 steady decode tokens/s against the weight-read limit (measured copy bandwidth / weight
   bytes).
5. Quantized modes (`--quants`, for `--quant-configs`): prefill 2 x 4096 and steady decode steps at batch 64 and 1,
   each as a ratio to bf16 measured in the same call.

    python bench/llama_h200.py --out bench/results/families-h200-DATE.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefill_matrix import ceilings, environment
from records import git_commit, write_json_atomic

from evalpipe_engine.devtools.hf_reference import hf_reference_model
from evalpipe_engine.devtools.random_weights import random_state_dict
from evalpipe_engine.models import NATIVE_ARCHITECTURES, NativeCausalLM, native_config

CONFIGS = Path(__file__).resolve().parents[1] / "cuda" / "evalpipe_engine" / "configs"


def log(msg: str) -> None:
    print(f"[family-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(fn: Any, iters: int, warmup: int = 2) -> float:
    """Median seconds of fn() over `iters` CUDA-event-timed calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return median(times)


def free() -> None:
    gc.collect()
    torch.cuda.empty_cache()


def hf_ppl(model: Any, ids: torch.Tensor) -> float:
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits
        lp = torch.log_softmax(logits.float(), -1)[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2)
    return float(torch.exp(-lp.double().mean()))


def our_ppl(model: NativeCausalLM, ids: torch.Tensor) -> float:
    lps = model.target_logprobs(list(ids.cpu()))
    return float(torch.exp(-torch.cat(lps).double().mean()))


def greedy(
    model: NativeCausalLM, prompts: list[torch.Tensor], counts: list[int], new: int
) -> tuple[float, float | None]:
    """Seconds for prefill + `new` greedy steps of all rows (every row to the end, argmax on the device), and the
    steady seconds per step (the steps after the eager warm-up step and the graph capture; None for short runs)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    dec = model.open_batch_decoder(prompts, counts, capacity=max(len(p) for p in prompts) + new + 1)
    tok = dec.first_logits.argmax(-1)
    t_steady = t0
    for i in range(new - 1):
        if i == 2:
            torch.cuda.synchronize()
            t_steady = time.perf_counter()
        tok = dec.step(tok).argmax(-1)
    torch.cuda.synchronize()
    end = time.perf_counter()
    del dec
    return end - t0, ((end - t_steady) / (new - 3) if new > 8 else None)


def humaneval_lengths(seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(164, generator=g, dtype=torch.float64)
    return [int(min(448, max(32, round(125 * math.exp(0.45 * float(x)))))) for x in z]


def build(cfg: Any, sd: dict[str, torch.Tensor], quant: str, attn: str = "flash") -> NativeCausalLM:
    _, cls = NATIVE_ARCHITECTURES[cfg.architecture]
    return cls.from_state_dict(cfg, sd, device="cuda", quant=quant, attn=attn)  # type: ignore[attr-defined]


def bench_config(name: str, args: argparse.Namespace, record: dict[str, Any], out: dict[str, Any]) -> None:
    cfg = native_config(json.loads((CONFIGS / f"{name}.json").read_text()), source=name)
    with_hf = name in args.hf
    out["shape"] = {
        "architecture": cfg.architecture,
        "n_params": cfg.n_params(),
        "layers": cfg.num_hidden_layers,
        "hidden": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads,
        "vocab": cfg.vocab_size,
    }
    dev = torch.device("cuda")
    sd = random_state_dict(cfg, dev, torch.float32, seed=0, residual_scaled=True)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (2, 4096), generator=g).to(dev)
    ours = build(cfg, sd, "bf16")
    hf16 = None
    if with_hf:
        parity: dict[str, Any] = {"rows": 2, "tokens": 4096}
        if args.parity_fp32:
            hf32 = hf_reference_model(cfg, sd, device=dev, dtype=torch.float32, attn_implementation="sdpa")
            parity["hf_fp32_ppl"] = hf_ppl(hf32, ids)
            del hf32
            free()
        hf16 = hf_reference_model(cfg, sd, device=dev, dtype=torch.bfloat16, attn_implementation="sdpa")
        parity["hf_bf16_ppl"] = hf_ppl(hf16, ids)
        parity["ours_flash_ppl"] = our_ppl(ours, ids)
        parity["ours_vs_hf_bf16_rel"] = parity["ours_flash_ppl"] / parity["hf_bf16_ppl"] - 1
        if "hf_fp32_ppl" in parity:
            for k in ("hf_bf16", "ours_flash"):
                parity[f"{k}_vs_hf_fp32_rel"] = parity[f"{k}_ppl"] / parity["hf_fp32_ppl"] - 1
        out["parity"] = parity
        log(f"{name} parity {json.dumps(parity)}")
        write_json_atomic(args.out, record)
    if name not in args.quant_configs:
        sd.clear()  # only the quantized builds need the fp32 weights: free them for the KV caches
        free()

    # ------------------------------------------------------------------------------------------ prefill
    out["prefill"] = []
    for ctx in args.ctxs:
        x = torch.randint(0, cfg.vocab_size, (2, ctx), generator=g).to(dev)
        row: dict[str, Any] = {"batch": 2, "ctx": ctx}
        with torch.inference_mode():
            s = timed(lambda x=x: ours.score_minibatch(x), args.iters)
            flops = cfg.flops_per_token(ctx) * x.numel()
            row |= {"ours_s": s, "ours_tokens_per_s": x.numel() / s, "ours_tflops": flops / s / 1e12}
            row["ours_fraction_of_matmul_ceiling"] = row["ours_tflops"] / record["ceilings"]["bf16_matmul_tflops"]
            if hf16 is not None:
                s_hf = timed(lambda x=x: hf16(input_ids=x, use_cache=False).logits, args.iters)
                row |= {"hf_sdpa_s": s_hf, "hf_tokens_per_s": x.numel() / s_hf, "speedup_vs_hf": s_hf / s}
        out["prefill"].append(row)
        log(f"{name} prefill {json.dumps(row)}")
        del x
        free()
        write_json_atomic(args.out, record)

    # ------------------------------------------------------------------------------------------ batch 64 / 1
    gen: dict[str, Any] = {"prompt_tokens": args.prompt, "new_tokens": args.new}
    prompts = [torch.randint(0, cfg.vocab_size, (args.prompt,), generator=g) for _ in range(16)]
    greedy(ours, prompts, [4] * 16, 4)  # compile and autotune at this batch size outside the timings
    s, step = greedy(ours, prompts, [4] * 16, args.new)
    gen |= {"ours_batch64_s": s, "ours_batch64_output_tokens_per_s": 64 * args.new / s, "ours_batch64_step_s": step}
    greedy(ours, prompts[:1], [1], 4)
    _, step1 = greedy(ours, prompts[:1], [1], 96)
    assert step1 is not None
    limit = record["ceilings"]["d2d_copy_gbs"] * 1e9 / ours.facts.weight_bytes
    gen |= {"ours_batch1_steady_tokens_per_s": 1 / step1, "batch1_weight_read_limit_tokens_per_s": limit}
    gen["batch1_fraction_of_limit"] = 1 / step1 / limit
    log(f"{name} batch 64/1 {json.dumps(gen)}")
    out["generation"] = gen
    write_json_atomic(args.out, record)
    if hf16 is not None:
        batch = torch.stack(prompts).repeat_interleave(4, 0).to(dev)
        with torch.inference_mode():
            hf16.generate(batch[:2], max_new_tokens=4, do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            hf_out = hf16.generate(
                batch, max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, pad_token_id=0
            )
            torch.cuda.synchronize()
            s_hf = time.perf_counter() - t0
        assert hf_out.shape[1] == args.prompt + args.new
        gen["hf_generate_batch64_s"] = s_hf
        gen["hf_generate_batch64_output_tokens_per_s"] = 64 * args.new / s_hf
        gen["speedup_batch64_vs_hf"] = s_hf / gen["ours_batch64_s"]
        log(f"{name} HF generate batch 64: {64 * args.new / s_hf:.0f} output tokens/s")
        del hf16, hf_out, batch
        free()
        write_json_atomic(args.out, record)

    # ------------------------------------------------------------------------------------------ HumanEval shape
    lengths = humaneval_lengths(11)
    he_prompts = [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in lengths]
    he: dict[str, Any] = {
        "prompts": 164,
        "n": args.n,
        "new_tokens": args.he_new,
        "prompt_tokens_mean": sum(lengths) / 164,
        "groups": [],
    }
    for rows in args.group_rows:
        per_group = max(1, rows // args.n)
        greedy(ours, he_prompts[:per_group], [args.n] * per_group, 4)
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for i in range(0, 164, per_group):
            chunk = he_prompts[i : i + per_group]
            greedy(ours, chunk, [args.n] * len(chunk), args.he_new)
        s = time.perf_counter() - t0
        tokens = 164 * args.n * args.he_new
        grp = {"group_rows": per_group * args.n, "seconds": s, "output_tokens_per_s": tokens / s}
        grp["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        he["groups"].append(grp)
        log(f"{name} HumanEval shape {json.dumps(grp)}")
        out["humaneval_shape"] = he
        write_json_atomic(args.out, record)
        free()
    if "hf_generate_batch64_output_tokens_per_s" in gen:
        best = max(gr["output_tokens_per_s"] for gr in he["groups"])
        he["best_vs_hf_generate_batch64"] = best / gen["hf_generate_batch64_output_tokens_per_s"]
    write_json_atomic(args.out, record)

    # ------------------------------------------------------------------------------------------ quantized modes
    if name in args.quant_configs:
        x = torch.randint(0, cfg.vocab_size, (2, 4096), generator=g).to(dev)
        base = {
            "prefill_2x4096_s": next(r["ours_s"] for r in out["prefill"] if r["ctx"] == 4096),
            "batch64_step_s": gen["ours_batch64_step_s"],
            "batch1_step_s": step1,
        }
        out["quant"] = {"bf16": base}
        del ours
        free()
        for quant in args.quants:
            try:
                m = build(cfg, sd, quant)
                with torch.inference_mode():
                    p = timed(lambda m=m: m.score_minibatch(x), args.iters)
                greedy(m, prompts, [4] * 16, 4)
                _, st64 = greedy(m, prompts, [4] * 16, 40)
                greedy(m, prompts[:1], [1], 4)
                _, st1 = greedy(m, prompts[:1], [1], 64)
                assert st64 is not None and st1 is not None
                q = {"prefill_2x4096_s": p, "batch64_step_s": st64, "batch1_step_s": st1}
                q |= {f"{k}_vs_bf16": base[k] / v for k, v in list(q.items())}  # speed ratios: > 1 is faster
                q["weight_gib"] = m.facts.weight_bytes / 2**30
                del m
            except Exception as e:  # one mode failing must not lose the others
                q = {"error": f"{type(e).__name__}: {e}"}
            out["quant"][quant] = q
            log(f"{name} {quant} {json.dumps(q)}")
            free()
            write_json_atomic(args.out, record)
    sd.clear()
    free()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="starcoder2-3b,qwen2.5-coder-7b,deepseek-coder-6.7b")
    parser.add_argument("--hf", default="qwen2.5-coder-7b,deepseek-coder-6.7b", help="configs compared with HF")
    parser.add_argument("--quant-configs", default="qwen2.5-coder-7b")
    parser.add_argument("--quants", default="int8,nf4,fp8")
    parser.add_argument("--out", required=True)
    parser.add_argument("--ctxs", default="4096,16384")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--he-new", type=int, default=256)
    parser.add_argument("--group-rows", default="320,640")
    parser.add_argument("--parity-fp32", action="store_true")
    args = parser.parse_args()
    args.configs = [c for c in args.configs.split(",") if c]
    args.hf = set(args.hf.split(","))
    args.quant_configs = set(args.quant_configs.split(","))
    args.quants = [q for q in args.quants.split(",") if q]
    args.ctxs = [int(c) for c in args.ctxs.split(",")]
    args.group_rows = [int(r) for r in args.group_rows.split(",")]

    record: dict[str, Any] = {"bench": "model-families", "commit": git_commit()}
    record["environment"] = environment()
    record["ceilings"] = ceilings()
    record["notes"] = [line.strip() for line in (__doc__ or "").splitlines() if line.strip()][:1]
    record["models"] = {}
    log(json.dumps(record["ceilings"]))
    write_json_atomic(args.out, record)
    for name in args.configs:
        record["models"][name] = {}
        try:
            bench_config(name, args, record, record["models"][name])
        except Exception as e:  # a config that fails keeps the others' figures
            record["models"][name]["error"] = f"{type(e).__name__}: {e}"
            log(f"{name} failed: {e}")
        free()
        write_json_atomic(args.out, record)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
