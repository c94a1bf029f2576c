"""KL of next-token distributions against bf16 (and fp32), per quant mode, on a random StarCoder2-shaped stack
(devtools.quality.random_stack_kl): hidden 3072, ffn 12288, 4 layers, vocab 49152, every linear through build_linear.
Prefill path: 64 rows x 8 positions in one call (M = 512 > small_m_max); decode path: 16 rows x 1 position
(M = 16, the small-M kernels). On CPU the reference paths run (same math, fp32 activations).

Usage: PYTHONPATH=cuda python bench/quant_quality.py --out bench/results/quant-quality-h100.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import torch
from records import write_json_atomic

from evalpipe_engine.devtools.quality import StackShape, random_stack_kl
from evalpipe_engine.quant import QuantOptions

SCHEMA_VERSION = 1

# int8 with non-default prefill options, measured beside the default modes
INT8_VARIANTS = {
    "int8-dequant": QuantOptions(int8_prefill="dequant"),
    "int8-w8a8-outliers6": QuantOptions(int8_prefill="w8a8", int8_outlier_threshold=6.0),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    shape = StackShape(hidden=3072, ffn=12288, layers=args.layers, vocab=49152)
    runs = {}
    for ref in ("fp32", "bf16"):
        for path, rows, seq in (("prefill", 64, 8), ("decode", 16, 1)):
            res = random_stack_kl(
                ["bf16", "fp16", "int8", "fp8", "nf4"], reference=ref, shape=shape, rows=rows, seq=seq, device=dev
            )
            for name, options in INT8_VARIANTS.items():
                one = random_stack_kl(
                    ["int8"], reference=ref, shape=shape, rows=rows, seq=seq, device=dev, options=options
                )
                res[name] = one["int8"]
            runs[f"{path}_vs_{ref}"] = res
            for mode, r in res.items():
                print(
                    f"{path:<8} vs {ref:<5} {mode:<20} KL mean {r['kl_mean']:.5f} max {r['kl_max']:.5f} "
                    f"top1 {r['top1_agreement']:.3f} |dlogit| mean {r['mean_abs']:.4f}"
                )
    record = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quant_quality",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "card": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
        "versions": {"torch": torch.__version__},
        "stack": shape.__dict__,
        "results": runs,
    }
    if args.out:
        write_json_atomic(args.out, record, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
