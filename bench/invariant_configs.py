"""Choosing the deterministic mode's fixed products (invariant.py, kernels/invariant_matmul.py), on StarCoder2-3B's
linear shapes against plain cuBLAS (F.linear, the fast path) in the same call: prefill as cuBLAS calls of a fixed
number of rows (1024, 2048, 4096) over 8192 rows; decode (M = 1, 64) as candidate configs of the split-K Triton
kernel with bf16 and int8 weights, and cuBLAS on a fixed 64-row chunk. A config is fixed for every M (that is the
invariance); this script only informs which one is hard-coded.

Usage (GPU):  PYTHONPATH=cuda python bench/invariant_configs.py --out bench/results/invariant-configs.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

import torch
import triton.testing
from records import git_commit, write_json_atomic

from evalpipe_engine.invariant import fixed_shape_linear
from evalpipe_engine.kernels.invariant_matmul import matmul_rows_split
from evalpipe_engine.system_info import system_info

# (name, N, K) of StarCoder2-3B: hidden 3072, 24 heads + 2 KV heads of 128, MLP 12288, vocab 49152
SHAPES = [("qkv", 3584, 3072), ("o", 3072, 3072), ("fc", 12288, 3072), ("proj", 3072, 12288), ("head", 49152, 3072)]
PREFILL_CHUNKS = [1024, 2048, 4096]
SPLIT = [  # BLOCK_M, BLOCK_N, BLOCK_K, warps, stages, SPLIT_K
    (16, 64, 128, 4, 4, 512),
    (64, 64, 128, 4, 4, 512),
    (64, 128, 128, 4, 3, 512),
    (64, 64, 128, 4, 4, 1024),
    (32, 64, 128, 4, 4, 512),
    (64, 32, 128, 4, 4, 512),
]


def bench(fn: Any) -> float:
    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefill-m", type=int, default=8192)
    parser.add_argument("--decode-ms", default="1,64")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dev = torch.device("cuda")
    info = system_info()
    record: dict[str, Any] = {
        "benchmark": "invariant-configs",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "card": info.get("device", {}).get("name"),
        "versions": {k: info.get(k) for k in ("torch", "triton")},
        "prefill": {},
        "decode": {},
    }
    totals: dict[str, float] = {}
    for name, n, k in SHAPES:
        w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) / k**0.5
        b = torch.randn(n, device=dev, dtype=torch.bfloat16)
        s = (w.float().abs().amax(dim=1) / 127).clamp_min(1e-8)
        q = (w.float() / s[:, None]).round().clamp(-127, 127).to(torch.int8)
        x = torch.randn(args.prefill_m, k, device=dev, dtype=torch.bfloat16)
        row: dict[str, float] = {"cublas": bench(lambda x=x, w=w, b=b: torch.nn.functional.linear(x, w, b))}
        for rows in PREFILL_CHUNKS:
            row[f"cublas-chunks-{rows}"] = bench(lambda x=x, w=w, b=b, rows=rows: fixed_shape_linear(x, w, b, rows))
        record["prefill"][name] = {key: round(ms, 4) for key, ms in row.items()}
        for key, ms in row.items():
            totals[f"prefill {key}"] = totals.get(f"prefill {key}", 0.0) + ms
        for m in [int(v) for v in args.decode_ms.split(",")]:
            xd = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            drow: dict[str, float] = {
                "cublas": bench(lambda xd=xd, w=w, b=b: torch.nn.functional.linear(xd, w, b)),
                "cublas-chunks-64": bench(lambda xd=xd, w=w, b=b: fixed_shape_linear(xd, w, b, 64)),
            }
            for bm, bn, bk, warps, stages, split in SPLIT:
                cfg = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "num_warps": warps, "num_stages": stages}
                for weight, scale, kind in ((w, None, "bf16"), (q, s, "int8")):
                    key = f"{kind}-{bm}x{bn}x{bk}-w{warps}-s{stages}-k{split}"
                    try:
                        fn = lambda xd=xd, w=weight, b=b, s=scale, cfg=cfg, split=split: matmul_rows_split(  # noqa: E731
                            xd, w, b, s, config=cfg, split_k=split
                        )
                        drow[key] = bench(fn)
                    except Exception as exc:  # out of shared memory and the like: not a candidate
                        drow[key] = float("nan")
                        print(f"{name} m{m} {key}: {type(exc).__name__}", flush=True)
            record["decode"][f"{name}-m{m}"] = {key: round(ms, 4) for key, ms in drow.items()}
            for key, ms in drow.items():
                totals[f"decode m{m} {key}"] = totals.get(f"decode m{m} {key}", 0.0) + ms
        write_json_atomic(args.out, record)
    record["totals_ms"] = {key: round(ms, 4) for key, ms in sorted(totals.items())}
    write_json_atomic(args.out, record)
    for key, ms in sorted(totals.items()):
        print(f"{key:48s} {ms:9.4f} ms", flush=True)
    print(json.dumps({"card": record["card"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
