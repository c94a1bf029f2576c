"""Combine one GPU call's serving benchmark outputs (scripts/gpu-serving-bench.sh) into one record and print the
table: each level's output tokens/s and its ratio to the baseline measured in the same call on the same card (our
engine's generate op decoding the same 64 HumanEval prompts as one batch).

    python bench/serving_record.py OUT_DIR > bench/results/serving-h200-<date>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1])
    baseline = json.loads((out / "serving-baseline.json").read_text())
    card = (out / "card.txt").read_text().strip() if (out / "card.txt").exists() else baseline["card"]
    runs = {}
    for name in ("ignore-eos", "no-ignore-eos"):
        path = out / f"serving-{name}.json"
        if path.exists():
            runs[name] = json.loads(path.read_text())
    base = baseline["output_tokens_per_s"]
    rows = []
    for name, run in runs.items():
        for level in run["levels"]:
            rows.append(
                {
                    "mode": name,
                    "concurrency": level["concurrency"],
                    "output_tokens_per_s": level["output_token_throughput"],
                    "vs_engine_generate": level["output_token_throughput"] / base,
                    "ttft_ms_p50": level["ttft_ms"]["p50"],
                    "ttft_ms_p99": level["ttft_ms"]["p99"],
                    "tpot_ms_p50": level["tpot_ms"]["p50"],
                    "e2e_ms_p99": level["e2e_ms"]["p99"],
                }
            )
    print(f"card: {card}; baseline: {baseline['what']}: {base:.0f} output tokens/s", file=sys.stderr)
    print(f"{'mode':>14} {'conc':>5} {'out tok/s':>10} {'vs generate':>12} {'TTFT p50/p99 ms':>18}", file=sys.stderr)
    for row in rows:
        ttft = f"{row['ttft_ms_p50']:.0f} / {row['ttft_ms_p99']:.0f}"
        print(
            f"{row['mode']:>14} {row['concurrency']:>5} {row['output_tokens_per_s']:>10.0f} "
            f"{row['vs_engine_generate']:>11.2f}x {ttft:>18}",
            file=sys.stderr,
        )
    record = {"kind": "serving_record", "card": card, "baseline": baseline, "table": rows, "runs": runs}
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
