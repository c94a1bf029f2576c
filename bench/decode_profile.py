"""Where one decode step's time goes: the CUDA kernels of a StaticDecoder step of our StarCoder2, per precision.

Runs --steps eager decode steps (CUDA graphs off, so every kernel is visible to the profiler; inside a graph the
same kernels run, minus the launch overhead) under torch.profiler and prints, per kernel name, how many launches one
step makes and their summed GPU time; then the graph-replayed step time of the same decoder for comparison. The
gap between "kernels per step" x ~2-3 us and the GEMV time is the per-kernel overhead that fusion can remove.

Usage (GPU):  PYTHONPATH=cuda python bench/decode_profile.py --quants bf16,nf4 --out /tmp/profile.json
Smoke (CPU):  PYTHONPATH=cuda python bench/decode_profile.py --size tiny --device cpu --quants bf16
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path
from typing import Any

import torch
from decode_matrix import Timer, config_for
from records import git_commit, write_json_atomic

from evalpipe_engine.model import NativeStarcoder2
from evalpipe_engine.system_info import system_info


def kernel_table(model: Any, prompt: torch.Tensor, batch: int, steps: int, device: torch.device) -> dict[str, Any]:
    os.environ["EVALPIPE_CUDA_GRAPHS"] = "0"
    decoder = model.open_decoder(prompt, batch, capacity=prompt.numel() + steps + 8)
    tokens = torch.randint(0, model.cfg.vocab_size, (batch,))
    for _ in range(3):
        decoder.step(tokens)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            decoder.step(tokens)
        if device.type == "cuda":
            torch.cuda.synchronize()
    del decoder
    launches: collections.Counter[str] = collections.Counter()
    gpu_us: collections.Counter[str] = collections.Counter()
    for event in prof.events():
        if device.type == "cuda" and event.device_type == torch.autograd.DeviceType.CUDA:
            launches[event.name] += 1
            gpu_us[event.name] += event.device_time
    rows = sorted(gpu_us, key=lambda n: -gpu_us[n])
    return {
        "kernels_per_step": round(sum(launches.values()) / steps, 1),
        "kernel_us_per_step": round(sum(gpu_us.values()) / steps, 1),
        "by_kernel": [
            {"name": n[:120], "per_step": round(launches[n] / steps, 2), "us_per_step": round(gpu_us[n] / steps, 1)}
            for n in rows
        ],
    }


def graphed_step_ms(model: Any, prompt: torch.Tensor, batch: int, steps: int, device: torch.device) -> float:
    os.environ["EVALPIPE_CUDA_GRAPHS"] = "1"
    decoder = model.open_decoder(prompt, batch, capacity=prompt.numel() + steps + 8)
    tokens = torch.randint(0, model.cfg.vocab_size, (batch,))
    for _ in range(3):
        decoder.step(tokens)
    with Timer(device) as t:
        for _ in range(steps):
            decoder.step(tokens)
    del decoder
    return t.ms / steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="3b", choices=["tiny", "3b", "7b", "15b"])
    ap.add_argument("--quants", default="bf16,nf4")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--top", type=int, default=18)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("decode_profile: no CUDA device visible; pass --device cpu --size tiny for a smoke run", file=sys.stderr)
        return 2
    os.environ.setdefault("EVALPIPE_DECODE_KERNEL", "1")
    os.environ.setdefault("EVALPIPE_CUDA_RTC", "1")
    cfg = config_for(args.size)
    result: dict[str, Any] = {
        "schema_version": 1,
        "benchmark": "decode_profile",
        "system": system_info(),
        "git_commit": git_commit(),
        "model": f"starcoder2-{args.size} (random weights)",
        "batch": args.batch,
        "prompt_tokens": args.prompt,
        "quants": {},
    }
    prompt = torch.randint(0, cfg.vocab_size, (args.prompt,), generator=torch.Generator().manual_seed(1))
    for quant in [q for q in args.quants.split(",") if q]:
        model = NativeStarcoder2.random(cfg, device=device, seed=0, quant=quant, attn="flash")
        table = kernel_table(model, prompt, args.batch, args.steps, device)
        table["graphed_step_ms"] = round(graphed_step_ms(model, prompt, args.batch, 32, device), 4)
        result["quants"][quant] = table
        del model
        print(
            f"\n{quant}: {table['kernels_per_step']} kernels/step, {table['kernel_us_per_step']:.0f} us of kernels, "
            f"graphed step {table['graphed_step_ms'] * 1e3:.0f} us",
            file=sys.stderr,
        )
        for row in table["by_kernel"][: args.top]:
            print(f"  {row['per_step']:7.1f} x {row['us_per_step']:8.1f} us  {row['name'][:100]}", file=sys.stderr)
        if args.out:
            write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
