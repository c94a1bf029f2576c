"""Where one continuous-batching admission's time goes (StaticDecoder.admit on our StarCoder2): a decoder of --slots
rows is filled, --free rows retire, and then --prompts prompts (log-normal lengths as in continuous_batching.py) with
--n samples each are admitted, --repeats times. Prints the admission's wall time (after a synchronize), its CUDA
kernels' summed time, and the profiler's top host and device operations, so that host waits (syncs, launches)
stand apart from the prefill's own GPU work. Writes --out JSON.

Usage (GPU):  PYTHONPATH=cuda:bench python bench/admit_profile.py --out /tmp/admit.json
Smoke (CPU):  PYTHONPATH=cuda:bench python bench/admit_profile.py --size tiny --device cpu --slots 8 --free 4 \
                --prompts 2 --n 2 --out /tmp/admit.json
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from continuous_batching import lognormal_ints
from decode_matrix import config_for
from records import git_commit, write_json_atomic

from evalpipe_engine.model import NativeStarcoder2
from evalpipe_engine.system_info import system_info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="3b", choices=["tiny", "3b"])
    ap.add_argument("--quant", default="bf16")
    ap.add_argument("--slots", type=int, default=1024)
    ap.add_argument("--free", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = config_for(args.size)
    model = NativeStarcoder2.random(cfg, device=device, seed=0, quant=args.quant, attn="flash")
    g = torch.Generator().manual_seed(3)
    lengths = lognormal_ints(args.prompts * (args.repeats + 1), 125, 0.45, 32, 448, seed=4)
    prompts = [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in lengths]
    decoder = model.open_batch_decoder([prompts[0]], [args.slots], capacity=1024, slots=args.slots)
    tokens = torch.zeros(args.slots, dtype=torch.int64, device=device)
    record: dict[str, Any] = {"benchmark": "admit_profile", "system": system_info(), "git_commit": git_commit()}
    record.update({k: getattr(args, k) for k in ("size", "quant", "slots", "free", "prompts", "n")})
    record["wall_ms"] = []
    for r in range(args.repeats + 1):
        decoder.step(tokens[: decoder.n])
        live = decoder.live_rows()
        decoder.retire(live[r % 2 :: max(1, len(live) // args.free)][: args.free])
        group = prompts[r * args.prompts : (r + 1) * args.prompts]
        counts = [args.n] * len(group)
        sync(device)
        if r < args.repeats:
            t0 = time.perf_counter()
            decoder.admit(group, counts)
            sync(device)
            record["wall_ms"].append((time.perf_counter() - t0) * 1e3)
            continue
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            decoder.admit(group, counts)
            sync(device)
        averages = prof.key_averages()
        host = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:20]
        record["top_host_ops"] = [
            {"name": e.key[:100], "calls": e.count, "self_cpu_us": round(e.self_cpu_time_total, 1)} for e in host
        ]
        kernels = [e for e in averages if getattr(e, "self_device_time_total", 0) > 0]
        kernels.sort(key=lambda e: -e.self_device_time_total)
        record["kernel_us"] = round(sum(e.self_device_time_total for e in kernels), 1)
        record["top_kernels"] = [
            {"name": e.key[:100], "calls": e.count, "us": round(e.self_device_time_total, 1)} for e in kernels[:15]
        ]
    write_json_atomic(args.out, record)
    print(f"admit of {args.prompts} prompts x {args.n}: wall ms {[round(x, 1) for x in record['wall_ms']]}")
    print(f"kernels {record.get('kernel_us', 0) / 1e3:.1f} ms; top host ops (self us):")
    for e in record["top_host_ops"]:
        print(f"  {e['calls']:5d} x {e['self_cpu_us']:10.1f}  {e['name']}")
    print("top kernels (us):")
    for e in record.get("top_kernels", []):
        print(f"  {e['calls']:5d} x {e['us']:10.1f}  {e['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
