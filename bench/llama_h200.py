"""The Llama family on the native engine vs HF transformers on the GPU, in one call: full-size random weights of a
published config (default Qwen2.5-Coder-7B), bf16.

1. Parity: perplexity of random token rows (2 x 4096) by our bf16 model (flash and sdpa) against HF's bf16 and fp32
   models on the same weights (HF sdpa; its fp32 is the reference). Weights ~ N(0, initializer_range), o_proj and
   down_proj scaled by 1/sqrt(2 layers) (devtools.random_weights residual_scaled: a random model that is not
   chaotic).
2. Prefill: tokens/s of one 2 x 4096 minibatch (ours: score_minibatch, target log-probs on the device; HF: its
   forward with logits, use_cache=False), CUDA events, median of `--iters` after two warm-ups; the bf16 matmul
   ceiling measured in the same call.
3. Generation: greedy decode of `--new` tokens for 64 rows (16 prompts x 4 samples, `--prompt` tokens each) through
   our batched decoder with CUDA graphs, and at `--big-rows` rows; HF generate at batch 64 (same prompts, greedy,
   min_new_tokens = max_new_tokens so no row stops early); batch-1 decode tokens/s.

    python bench/llama_h200.py --config qwen2.5-coder-7b --out bench/results/llama-qwen2.5-coder-7b-h200-DATE.json
"""

from __future__ import annotations

import argparse
import gc
import json
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
from evalpipe_engine.models import LlamaConfig, NativeLlama


def log(msg: str) -> None:
    print(f"[llama-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def hf_ppl(model: Any, ids: torch.Tensor) -> float:
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits
        lp = torch.log_softmax(logits.float(), -1)[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2)
    return float(torch.exp(-lp.double().mean()))


def our_ppl(model: NativeLlama, ids: torch.Tensor) -> float:
    lps = model.target_logprobs(list(ids.cpu()))
    return float(torch.exp(-torch.cat(lps).double().mean()))


STEADY: dict[str, float] = {}


def greedy(model: NativeLlama, prompts: list[torch.Tensor], counts: list[int], new: int) -> tuple[float, int]:
    """Seconds for prefill + `new` greedy steps of all rows (every row runs to the end), and the rows. The steps
    after the first two (the eager warm-up step and the graph capture) are also timed alone: STEADY[rows] is their
    seconds per step."""
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
    if new > 4:
        STEADY[str(sum(counts))] = (end - t_steady) / (new - 3)
    return end - t0, sum(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="qwen2.5-coder-7b")
    parser.add_argument("--out", required=True)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--big-rows", type=int, default=328)
    parser.add_argument("--skip-hf-generate", action="store_true")
    args = parser.parse_args()

    record: dict[str, Any] = {"bench": "llama-family", "config": args.config, "commit": git_commit()}
    record["environment"] = environment()
    record["ceilings"] = ceilings()
    log(json.dumps(record["ceilings"]))
    write_json_atomic(args.out, record)
    cfg = LlamaConfig.preset(args.config)
    record["shape"] = {
        "architecture": cfg.architecture,
        "n_params": cfg.n_params(),
        "layers": cfg.num_hidden_layers,
        "hidden": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads,
        "vocab": cfg.vocab_size,
        "rope": cfg.rope_scaling.to_json(),
    }
    dev = torch.device("cuda")
    sd = random_state_dict(cfg, dev, torch.float32, seed=0, residual_scaled=True)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (2, args.ctx), generator=g).to(dev)

    # ------------------------------------------------------------------------------------------ 1. parity
    parity: dict[str, Any] = {"rows": 2, "tokens": args.ctx}
    hf32 = hf_reference_model(cfg, sd, device=dev, dtype=torch.float32, attn_implementation="sdpa")
    parity["hf_fp32_ppl"] = hf_ppl(hf32, ids)
    del hf32
    gc.collect()
    torch.cuda.empty_cache()
    hf16 = hf_reference_model(cfg, sd, device=dev, dtype=torch.bfloat16, attn_implementation="sdpa")
    parity["hf_bf16_ppl"] = hf_ppl(hf16, ids)
    models: dict[str, NativeLlama] = {}
    for attn in ("flash", "sdpa"):
        m = NativeLlama.from_state_dict(cfg, sd, device=dev, quant="bf16", attn=attn)
        parity[f"ours_{attn}_ppl"] = our_ppl(m, ids)
        models[attn] = m
    del models["sdpa"]
    del sd
    gc.collect()
    torch.cuda.empty_cache()
    ref = parity["hf_fp32_ppl"]
    for k in ("hf_bf16", "ours_flash", "ours_sdpa"):
        parity[f"{k}_vs_hf_fp32_rel"] = parity[f"{k}_ppl"] / ref - 1
    for k in ("ours_flash", "ours_sdpa"):
        parity[f"{k}_vs_hf_bf16_rel"] = parity[f"{k}_ppl"] / parity["hf_bf16_ppl"] - 1
    record["parity"] = parity
    log(json.dumps(parity))
    write_json_atomic(args.out, record)

    ours = models["flash"]
    # ------------------------------------------------------------------------------------------ 2. prefill
    with torch.inference_mode():
        s_ours = timed(lambda: ours.score_minibatch(ids), args.iters)
        s_hf = timed(lambda: hf16(input_ids=ids, use_cache=False).logits, args.iters)
    tokens = ids.numel()
    flops = cfg.flops_per_token(args.ctx) * tokens
    record["prefill"] = {
        "batch": 2,
        "ctx": args.ctx,
        "ours_flash_s": s_ours,
        "ours_tokens_per_s": tokens / s_ours,
        "ours_tflops": flops / s_ours / 1e12,
        "ours_fraction_of_matmul_ceiling": flops / s_ours / 1e12 / record["ceilings"]["bf16_matmul_tflops"],
        "hf_sdpa_s": s_hf,
        "hf_tokens_per_s": tokens / s_hf,
        "speedup_vs_hf": s_hf / s_ours,
    }
    log(json.dumps(record["prefill"]))
    write_json_atomic(args.out, record)

    # ------------------------------------------------------------------------------------------ 3. generation
    gen: dict[str, Any] = {"prompt_tokens": args.prompt, "new_tokens": args.new, "greedy": True}
    prompts = [torch.randint(0, cfg.vocab_size, (args.prompt,), generator=g) for _ in range(16)]
    greedy(ours, prompts, [4] * 16, 4)  # compile and autotune at this batch size outside the timings
    s, rows = greedy(ours, prompts, [4] * 16, args.new)
    gen["ours_batch64_s"] = s
    gen["ours_batch64_output_tokens_per_s"] = rows * args.new / s
    log(f"ours batch {rows}: {rows * args.new / s:.0f} output tokens/s")
    big_prompts = [torch.randint(0, cfg.vocab_size, (args.prompt,), generator=g) for _ in range(args.big_rows // 4)]
    greedy(ours, big_prompts, [4] * len(big_prompts), 4)
    s, rows = greedy(ours, big_prompts, [4] * len(big_prompts), args.new)
    gen[f"ours_batch{rows}_s"] = s
    gen[f"ours_batch{rows}_output_tokens_per_s"] = rows * args.new / s
    log(f"ours batch {rows}: {rows * args.new / s:.0f} output tokens/s")
    greedy(ours, prompts[:1], [1], 4)
    s1, _ = greedy(ours, prompts[:1], [1], 64)
    gen["ours_batch1_decode_tokens_per_s"] = 64 / s1
    weight_bytes = ours.facts.weight_bytes
    gen["batch1_hbm_limit_tokens_per_s"] = record["ceilings"]["d2d_copy_gbs"] * 1e9 / weight_bytes
    log(f"ours batch 1: {64 / s1:.1f} tokens/s (HBM limit {gen['batch1_hbm_limit_tokens_per_s']:.0f})")
    gen["ours_steady_step_seconds_by_rows"] = dict(STEADY)
    gen["ours_batch1_steady_tokens_per_s"] = 1 / STEADY["1"]
    log(f"steady step seconds by rows: {STEADY}")
    record["generation"] = gen
    write_json_atomic(args.out, record)
    if not args.skip_hf_generate:
        batch = torch.stack(prompts).repeat_interleave(4, 0).to(dev)
        with torch.inference_mode():
            hf16.generate(batch[:2], max_new_tokens=4, do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = hf16.generate(
                batch, max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, pad_token_id=0
            )
            torch.cuda.synchronize()
            s_hf = time.perf_counter() - t0
        assert out.shape[1] == args.prompt + args.new
        gen["hf_generate_batch64_s"] = s_hf
        gen["hf_generate_batch64_output_tokens_per_s"] = 64 * args.new / s_hf
        gen["speedup_batch64_vs_hf"] = s_hf / gen["ours_batch64_s"]
        log(f"HF generate batch 64: {64 * args.new / s_hf:.0f} output tokens/s")
    record["generation"] = gen
    write_json_atomic(args.out, record)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
