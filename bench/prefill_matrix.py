"""Prefill latency matrix on the GPU: HF transformers (bf16, sdpa) against our native StarCoder2 (bf16, our Triton
flash kernel) on full-size random-weight StarCoder2 configs, in the same process on the same card, with the card's
measured ceilings (bf16 matrix product, device-to-device copy) and FLOPs per token.

    python3 bench/prefill_matrix.py                          # 3B (HF + ours, 9 cells), 7B and 15B (ours)
    python3 bench/prefill_matrix.py --models 3b --cells 2x4096,2x16384 --protocol quick --out /tmp/x.json

Each cell runs through evalpipe_engine.bench.run_bench (the engine's `bench` op): a minibatch is `batch` rows of
`ctx` random ids. Ours scores it as perplexity scoring does (packed prefill + chunked-head target log-probs);
HF runs its forward returning bf16 logits for every position (how BASELINES.md measured it).
Protocols: full = 2 warm-up + 4 rounds x 4 timed minibatches (the study's), quick = 1 warm-up + 3 timed,
min = 1 warm-up + 2 timed (15B, to fit the device budget). Each row records its protocol.
Writes bench/results/prefill-<card>-<date>.json (schema_version 1) and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "cuda"))

from records import write_json_atomic  # noqa: E402

from evalpipe_engine.backend import ModelFacts  # noqa: E402
from evalpipe_engine.bench import run_bench  # noqa: E402
from evalpipe_engine.model import (  # noqa: E402
    NativeStarcoder2,
    Starcoder2Config,
    hf_reference_model,
    random_state_dict,
)

PROTOCOLS: dict[str, dict[str, int]] = {
    "full": {"warmup": 2, "iters": 4, "repeats": 4},
    "quick": {"warmup": 1, "iters": 3, "repeats": 1},
    "min": {"warmup": 1, "iters": 2, "repeats": 1},
}
ALL_CELLS = [(b, t) for b in (2, 4, 8) for t in (4096, 8192, 16384)]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_cells(spec: str) -> list[tuple[int, int]]:
    if spec == "all":
        return list(ALL_CELLS)
    out = []
    for part in spec.split(","):
        b, _, t = part.partition("x")
        if not (b.isdigit() and t.isdigit()):
            raise SystemExit(f"prefill_matrix: bad cell {part!r}: write BATCHxCTX, e.g. 2x4096")
        out.append((int(b), int(t)))
    return out


def environment() -> dict[str, Any]:
    import transformers
    import triton

    props = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        driver = None
    return {
        "card": torch.cuda.get_device_name(0),
        "sm_count": props.multi_processor_count,
        "total_gib": round(props.total_memory / 2**30, 2),
        "capability": f"{props.major}.{props.minor}",
        "driver": driver,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def ceilings() -> dict[str, float]:
    from triton.testing import do_bench

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = do_bench(lambda: a @ b, warmup=100, rep=500, return_mode="median")
    tflops = 2 * n**3 / (ms * 1e-3) / 1e12
    a = b = torch.empty(0)
    src = torch.randn(2**30 // 2, device="cuda", dtype=torch.bfloat16)  # 1 GiB
    dst = torch.empty_like(src)
    ms_copy = do_bench(lambda: dst.copy_(src), warmup=100, rep=500, return_mode="median")
    gbs = 2 * src.numel() * 2 / (ms_copy * 1e-3) / 1e9
    src = dst = torch.empty(0)
    torch.cuda.empty_cache()
    return {"bf16_matmul_tflops": tflops, "d2d_copy_gbs": gbs, "matmul_shape": n, "copy_bytes": 2**30}


def attention_microbench(cfg: Starcoder2Config) -> list[dict[str, Any]]:
    """One layer's attention, B=2, the model's heads: our kernel against torch SDPA (band mask past the window)."""
    from triton.testing import do_bench

    from evalpipe_engine.attention import packed_attention

    rows = []
    hq, hkv, d, w = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.sliding_window
    for t in (4096, 16384):
        bsz = 2
        n = bsz * t
        q = torch.randn(n, hq, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(n, hkv, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(n, hkv, d, device="cuda", dtype=torch.bfloat16)
        cu = torch.arange(0, n + 1, t, device="cuda", dtype=torch.int32)
        avg_keys = (t + 1) / 2 if t <= (w or t) else ((w or t) * ((w or t) + 1) / 2 + (t - (w or t)) * (w or t)) / t
        flops = 4 * n * hq * d * avg_keys
        for backend in ("flash", "sdpa"):

            def call(backend: str = backend, q=q, k=k, v=v, cu=cu, t: int = t) -> torch.Tensor:
                return packed_attention(q, k, v, cu, t, w, backend)

            ms = do_bench(call, warmup=25, rep=200, return_mode="median")
            rows.append({"backend": backend, "batch": bsz, "ctx": t, "ms": ms, "tflops": flops / (ms * 1e-3) / 1e12})
            log(f"attention {backend} 2x{t}: {ms:.3f} ms, {rows[-1]['tflops']:.0f} TFLOP/s")
    torch.cuda.empty_cache()
    return rows


def flash_sweep(cfg: Starcoder2Config) -> list[dict[str, Any]]:
    from triton.testing import do_bench

    from evalpipe_engine.kernels.flash_attention import flash_attention

    hq, hkv, d, w = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.sliding_window
    rows = []
    for t in (4096, 16384):
        n = 2 * t
        q = torch.randn(n, hq, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(n, hkv, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(n, hkv, d, device="cuda", dtype=torch.bfloat16)
        cu = torch.arange(0, n + 1, t, device="cuda", dtype=torch.int32)
        ref = flash_attention(q, k, v, cu, t, w)
        for conf in [(128, 64, 8, 3), (128, 128, 8, 3), (128, 128, 8, 2), (128, 64, 4, 3), (64, 64, 4, 3),
                     (128, 32, 4, 4), (128, 64, 8, 4), (256, 64, 8, 3)]:  # fmt: skip
            try:
                out = flash_attention(q, k, v, cu, t, w, config=conf)
                err = float((out.float() - ref.float()).norm() / ref.float().norm())

                def call(conf=conf, q=q, k=k, v=v, cu=cu, t: int = t) -> torch.Tensor:
                    return flash_attention(q, k, v, cu, t, w, config=conf)

                ms = do_bench(call, warmup=25, rep=150, return_mode="median")
            except Exception as exc:  # a tile config the compiler rejects (shared memory): record and go on
                rows.append({"ctx": t, "config": conf, "error": str(exc)[:200]})
                log(f"sweep {t} {conf}: {str(exc)[:100]}")
                continue
            rows.append({"ctx": t, "config": conf, "ms": ms, "rel_err_vs_default": err})
            log(f"sweep 2x{t} {conf}: {ms:.3f} ms (err vs default {err:.1e})")
    return rows


def parity_diag(cfg: Starcoder2Config, sd: dict[str, torch.Tensor]) -> dict[str, float]:
    """Where the bf16 differences come from: every variant against HF in float32 on the same weights."""
    g = torch.Generator().manual_seed(3)
    seq = torch.randint(0, cfg.vocab_size, (5000,), generator=g)
    out: dict[str, float] = {}

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a.double() - b.double()).norm() / b.double().norm())

    sd32 = {k: v.float() for k, v in sd.items()}
    hf32 = hf_reference_model(cfg, sd32, device="cuda", dtype=torch.float32, attn_implementation="sdpa")
    with torch.inference_mode():
        ref32 = hf32(input_ids=seq[None].cuda(), use_cache=False).logits[0].float()
    del hf32
    ours32 = NativeStarcoder2.from_state_dict(cfg, sd32, device="cuda", quant="fp32", attn="flash")
    out["ours_fp32_flash_vs_hf_fp32"] = rel(ours32.logits(seq), ref32)
    del ours32, sd32
    torch.cuda.empty_cache()
    hf16 = hf_reference_model(cfg, sd, device="cuda", dtype=torch.bfloat16, attn_implementation="sdpa")
    with torch.inference_mode():
        ref16 = hf16(input_ids=seq[None].cuda(), use_cache=False).logits[0].float()
    del hf16
    out["hf_bf16_vs_hf_fp32"] = rel(ref16, ref32)
    for attn in ("flash", "sdpa"):
        for fuse in (True, False):
            m = NativeStarcoder2.from_state_dict(cfg, sd, device="cuda", quant="bf16", attn=attn, fuse_gelu=fuse)
            lg = m.logits(seq)
            tag = f"ours_bf16_{attn}_{'fusedgelu' if fuse else 'gelu'}"
            out[f"{tag}_vs_hf_bf16"] = rel(lg, ref16)
            out[f"{tag}_vs_hf_fp32"] = rel(lg, ref32)
            del m, lg
            torch.cuda.empty_cache()
    log(f"parity diag: {json.dumps(out, indent=1)}")
    return out


class HfForward:
    """HF's Starcoder2ForCausalLM forward as a bench backend (its real model; only the call is adapted)."""

    def __init__(self, model: Any, facts: ModelFacts) -> None:
        self.model = model
        self.facts = facts

    def target_logprobs(self, sequences: list[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError("HfForward is a timing adapter: use score_minibatch")

    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError("HfForward is a timing adapter: use score_minibatch")

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(input_ids=ids, use_cache=False).logits


def run_cells(backend: Any, cells: list[tuple[int, int]], protocol: str, label: str) -> list[dict[str, Any]]:
    rows = []
    for bsz, t in cells:
        res = run_bench(backend, {"batch": bsz, "ctx": t, **PROTOCOLS[protocol]})
        res["protocol"] = protocol
        rows.append(res)
        if res["status"] == "ok":
            log(f"{label} {bsz}x{t}: {res['seconds_per_minibatch']:.4f} s, {res['tokens_per_s']:.0f} tok/s, "
                f"peak {res['peak_gib']:.1f} GiB")  # fmt: skip
        else:
            log(f"{label} {bsz}x{t}: OOM (peak {res['peak_gib']:.1f} GiB)")
    return rows


def parity_check(ours: NativeStarcoder2, hf: Any, vocab: int) -> dict[str, float]:
    """One 2x6000 minibatch (past the window): mean NLL and logits of ours vs HF on the same weights."""
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, vocab, (2, 6000), generator=g)
    lps = ours.target_logprobs(list(ids))
    with torch.inference_mode():
        ref = hf(input_ids=ids.cuda(), use_cache=False).logits.float()
    ref_lp = torch.log_softmax(ref, -1)[:, :-1].gather(2, ids[:, 1:, None].cuda()).squeeze(2).cpu()
    ours_logits = ours.logits(ids[0])
    err = float((ours_logits - ref[0]).norm() / ref[0].norm())
    ppl, ref_ppl = torch.exp(-torch.cat(lps).double().mean()), torch.exp(-ref_lp.double().mean())
    del ref, ours_logits
    torch.cuda.empty_cache()
    diff = float(ppl / ref_ppl) - 1
    return {"logits_rel_err": err, "ppl": float(ppl), "hf_ppl": float(ref_ppl), "ppl_rel_diff": diff}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="3b,7b,15b")
    ap.add_argument("--cells", default="all", help="BATCHxCTX list for ours, or 'all' (the 9 study cells)")
    ap.add_argument("--hf-cells", default="all", help="cells for the HF baseline (3B only); 'none' to skip")
    ap.add_argument("--protocol", default="full", choices=sorted(PROTOCOLS), help="protocol for ours on 3B")
    ap.add_argument("--big-protocol", default="quick", choices=sorted(PROTOCOLS), help="ours on 7B")
    ap.add_argument("--huge-protocol", default="min", choices=sorted(PROTOCOLS), help="ours on 15B")
    ap.add_argument("--hf-protocol", default="quick", choices=sorted(PROTOCOLS))
    ap.add_argument("--sweep", action="store_true", help="time several flash tile configs (3B heads)")
    ap.add_argument("--parity-diag", action="store_true", help="3B: ours/HF bf16 against HF fp32, variants")
    ap.add_argument("--profile", action="store_true", help="print a kernel-time breakdown of ours at the first cell")
    ap.add_argument("--out", default=None, help="output JSON (default bench/results/prefill-<card>-<date>.json)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("prefill_matrix: no CUDA device: run it on the GPU machine", file=sys.stderr)
        return 2
    cells = parse_cells(args.cells)
    hf_cells = [] if args.hf_cells == "none" else parse_cells(args.hf_cells)
    env = environment()
    log(f"{env['card']} driver {env['driver']} torch {env['torch']} triton {env['triton']}")
    ceil = ceilings()
    log(f"ceilings: bf16 matmul {ceil['bf16_matmul_tflops']:.0f} TFLOP/s, copy {ceil['d2d_copy_gbs']:.0f} GB/s")
    result: dict[str, Any] = {"schema_version": 1, "kind": "prefill_matrix", **env, "ceilings": ceil,
                              "protocols": PROTOCOLS, "models": {}}  # fmt: skip
    out = Path(args.out) if args.out else default_out(env)
    for name in args.models.split(","):
        try:
            run_model(name, args, cells, hf_cells, ceil, result)
        except Exception as exc:  # record and go on: one model's failure must not lose the others' figures
            log(f"{name}: FAILED {type(exc).__name__}: {exc}")
            result["models"][name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            gc.collect()
            torch.cuda.empty_cache()
        write_json_atomic(out, result)
    log(f"wrote {out}")
    print_table(result)
    return 0


def run_model(
    name: str,
    args: argparse.Namespace,
    cells: list[tuple[int, int]],
    hf_cells: list[tuple[int, int]],
    ceil: dict[str, float],
    result: dict[str, Any],
) -> None:
    gc.collect()  # a previous model's failure may have left its tensors to the collector
    torch.cuda.empty_cache()
    cfg = Starcoder2Config.preset(name)
    entry: dict[str, Any] = {
        "config": f"cuda/evalpipe_engine/configs/starcoder2-{name}.json",
        "n_params": cfg.n_params(),
        "flops_per_token": {str(t): cfg.flops_per_token(t) for t in (4096, 8192, 16384)},
    }
    t0 = time.perf_counter()
    sd = random_state_dict(cfg, "cuda", torch.bfloat16, seed=0)
    ours = NativeStarcoder2.from_state_dict(cfg, sd, device="cuda", quant="bf16", attn="flash")
    log(f"{name}: built ours in {time.perf_counter() - t0:.1f} s, {ours.facts.weight_bytes / 2**30:.1f} GiB")
    if name == "3b":
        entry["attention_1layer"] = attention_microbench(cfg)
        if args.sweep:
            entry["flash_sweep"] = flash_sweep(cfg)
        if args.parity_diag:
            entry["parity_diag"] = parity_diag(cfg, sd)
    hf = None
    if name == "3b" and hf_cells:
        hf = hf_reference_model(cfg, sd, device="cuda", dtype=torch.bfloat16, attn_implementation="sdpa")
        entry["parity_vs_hf"] = parity_check(ours, hf, cfg.vocab_size)
        log(f"parity: {entry['parity_vs_hf']}")
    del sd
    gc.collect()
    protocol = {"3b": args.protocol, "15b": args.huge_protocol}.get(name, args.big_protocol)
    if args.profile:
        profile(ours, *cells[0])
    entry["ours_bf16_flash"] = run_cells(ours, cells, protocol, f"{name} ours")
    if hf is not None:
        del ours
        gc.collect()
        torch.cuda.empty_cache()
        entry["hf_bf16_sdpa"] = run_cells(HfForward(hf, hf_facts(cfg)), hf_cells, args.hf_protocol, f"{name} HF")
        del hf
    else:
        del ours
    gc.collect()
    torch.cuda.empty_cache()
    for rows in (entry.get("ours_bf16_flash", []), entry.get("hf_bf16_sdpa", [])):
        for r in rows:
            if r["status"] == "ok":
                fpt = cfg.flops_per_token(r["ctx"])
                r["tflops"] = r["tokens_per_s"] * fpt / 1e12
                r["fraction_of_matmul_ceiling"] = r["tflops"] / ceil["bf16_matmul_tflops"]
    result["models"][name] = entry


def profile(model: NativeStarcoder2, bsz: int, t: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    ids = torch.randint(0, model.cfg.vocab_size, (bsz, t), device="cuda")
    model.score_minibatch(ids)
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        model.score_minibatch(ids)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25), file=sys.stderr)


def hf_facts(cfg: Starcoder2Config) -> ModelFacts:
    return ModelFacts(
        architecture="Starcoder2ForCausalLM", vocab_size=cfg.vocab_size,
        max_position_embeddings=cfg.max_position_embeddings, sliding_window=cfg.sliding_window,
        bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, n_params=cfg.n_params(),
        weight_bytes=2 * cfg.n_params(), dtype="bfloat16", device="cuda",
    )  # fmt: skip


def default_out(env: dict[str, Any]) -> Path:
    card = env["card"].lower().replace("nvidia", "").strip().replace(" ", "-")
    return REPO / "bench" / "results" / f"prefill-{card}-{env['date'][:10]}.json"


def print_table(result: dict[str, Any]) -> None:
    ceil = result["ceilings"]
    print(f"\n{result['card']} | driver {result['driver']} | torch {result['torch']} | triton {result['triton']} | "
          f"transformers {result['transformers']} | {result['date']}")  # fmt: skip
    print(f"ceilings: bf16 matmul {ceil['bf16_matmul_tflops']:.0f} TFLOP/s, d2d copy {ceil['d2d_copy_gbs']:.0f} GB/s")
    print("| model | impl | BxT | protocol | s/minibatch | tokens/s | peak GiB | TFLOP/s | % matmul ceiling |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, entry in result["models"].items():
        for impl, key in (("HF bf16 sdpa", "hf_bf16_sdpa"), ("ours bf16 flash", "ours_bf16_flash")):
            for r in entry.get(key, []):
                if r["status"] != "ok":
                    print(f"| {name} | {impl} | {r['batch']}x{r['ctx']} | {r['protocol']} | OOM | | | | |")
                    continue
                print(f"| {name} | {impl} | {r['batch']}x{r['ctx']} | {r['protocol']} | "
                      f"{r['seconds_per_minibatch']:.4f} | {r['tokens_per_s'] / 1e3:.1f}k | {r['peak_gib']:.1f} | "
                      f"{r['tflops']:.0f} | {100 * r['fraction_of_matmul_ceiling']:.0f}% |")  # fmt: skip
        fpt = entry["flops_per_token"]
        print(f"{name}: FLOPs/token " + ", ".join(f"T={t}: {v / 1e9:.2f} G" for t, v in fpt.items()))
        if "parity_vs_hf" in entry:
            print(f"{name}: parity vs HF {entry['parity_vs_hf']}")


if __name__ == "__main__":
    sys.exit(main())
