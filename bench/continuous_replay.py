"""The continuous generate loop's schedule, replayed on the CPU with the tiny trained model: the realistic-length
workload of bench/continuous_batching.py (164 prompts x n samples, forced log-normal stop lengths) through the same
loop (generation.decode_prompts), counting what a GPU run pays for but cannot show cheaply: steps, the rows each
step runs (live rows and the graph bucket: padding included), graph bucket changes (each one a CUDA graph capture
on the GPU), admissions and the prompts and samples each takes, and the steps after the queue empties (the tail).
No timing: the counts are the schedule's, whatever the device.

    PYTHONPATH=cuda:bench python bench/continuous_replay.py --rows 1024 --out /tmp/replay.json   (minutes on CPU)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from continuous_batching import UNREACHED_STOPS, workload
from records import git_commit, write_json_atomic

from evalpipe_engine import decoding
from evalpipe_engine.generation import decode_prompts
from evalpipe_engine.loading import load_model
from evalpipe_engine.system_info import system_info


class Schedule:
    """What the decoder did, recorded by wrapping its step, admit and rebucketing."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []  # (live rows, bucket) of each step
        self.admissions: list[tuple[int, int]] = []  # (prompts, samples) of each admission
        self.bucket_changes: list[tuple[int, int]] = []

    def install(self) -> None:
        decoder = decoding.StaticDecoder
        step, admit, rebucket = decoder.step, decoder.admit, decoder._rebucket
        schedule = self

        def counted_step(dec: decoding.StaticDecoder, tokens: Any) -> Any:
            schedule.steps.append((dec.live_count, dec._bucket))
            return step(dec, tokens)

        def counted_admit(dec: decoding.StaticDecoder, prompts: Any, counts: Any) -> Any:
            schedule.admissions.append((len(prompts), sum(int(c) for c in counts)))
            return admit(dec, prompts, counts)

        def counted_rebucket(dec: decoding.StaticDecoder) -> None:
            before = dec._bucket
            rebucket(dec)
            if dec._bucket != before:
                schedule.bucket_changes.append((before, dec._bucket))

        decoding.StaticDecoder.step = counted_step  # type: ignore[method-assign]
        decoding.StaticDecoder.admit = counted_admit  # type: ignore[method-assign]
        decoding.StaticDecoder._rebucket = counted_rebucket  # type: ignore[method-assign]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    loaded = load_model({"model": "preset:tiny-starcoder2", "seed": 0, "device": "cpu", "backend": "native"})
    work = workload(loaded.backend.cfg.vocab_size, args.n, 6)
    schedule = Schedule()
    schedule.install()
    count, rows = decode_prompts(
        loaded, work, temperature=0.8, top_p=0.95, stop=UNREACHED_STOPS, max_batch_rows=args.rows,
        emit=lambda _event, _data: None, overlap=False,
    )  # fmt: skip
    steps = schedule.steps
    full = steps[0][1] if steps else 0
    tail_from = next((i for i, (_, b) in enumerate(steps) if b != full), len(steps))
    record = {
        "benchmark": "continuous_replay",
        "system": system_info(),
        "git_commit": git_commit(),
        "rows": rows,
        "samples": count,
        "steps": len(steps),
        "live_row_steps": sum(live for live, _ in steps),
        "bucket_row_steps": sum(b for _, b in steps),
        "steps_at_full_bucket": tail_from,
        "bucket_changes": schedule.bucket_changes,
        "admissions": len(schedule.admissions),
        "admitted_prompts_mean": sum(p for p, _ in schedule.admissions) / max(1, len(schedule.admissions)),
        "admitted_samples_mean": sum(s for _, s in schedule.admissions) / max(1, len(schedule.admissions)),
    }
    write_json_atomic(args.out, record)
    occupancy = record["live_row_steps"] / max(1, record["bucket_row_steps"])
    print(f"{'rows':>5} {'steps':>6} {'full-bucket steps':>17} {'captures':>8} {'admissions':>10} {'prompts/adm':>11}"
          f" {'live/computed rows':>18}")  # fmt: skip
    print(
        f"{rows:5d} {len(steps):6d} {tail_from:17d} {len(schedule.bucket_changes):8d} {record['admissions']:10d}"
        f" {record['admitted_prompts_mean']:11.1f} {occupancy:18.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
