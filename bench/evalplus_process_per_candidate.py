"""evalplus's way of running candidates, for bench/evalplus-throughput.ts: no container, one process per program.

evalplus's untrusted_check starts one process per (candidate, suite) (a multiprocessing.Process running
exec(code) under reliability_guard and per-test time limits) from a pool of workers. This script runs the same
program texts the TypeScript bench gives it, two ways, with --workers programs at once:
  spawn: each program in its own fresh `python3 FILE` subprocess (with the host's site-packages, numpy included);
  spawn-nosite: the same with `python3 -S` (no site-packages: the harness's numpy stand-in, as in the sandbox);
  fork:  each program in a multiprocessing.Process forked from a warm worker that exec()s it (closest to evalplus).
Reads a JSON list of {"program": str, "timeout_s": float} on stdin; prints one JSON object: the mode, the
number of programs, the seconds, the executions per second and the pass count (exit code 0).

  python3 bench/evalplus_process_per_candidate.py --mode spawn --workers 16 < programs.json
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def run_spawn(job, workdir, index, flags=()):
    path = os.path.join(workdir, f"p{index}.py")
    with open(path, "w") as handle:
        handle.write(job["program"])
    try:
        done = subprocess.run(
            [sys.executable, *flags, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=job["timeout_s"],
            cwd=workdir,
        )
        return done.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _exec_child(program):
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        exec(compile(program, "<candidate>", "exec"), {"__name__": "__main__"})
    except BaseException:
        os._exit(1)
    os._exit(0)


def run_fork(job, _workdir, _index):
    process = multiprocessing.get_context("fork").Process(target=_exec_child, args=(job["program"],))
    process.start()
    process.join(job["timeout_s"])
    if process.is_alive():
        process.kill()
        process.join()
        return False
    return process.exitcode == 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["spawn", "spawn-nosite", "fork"], required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    jobs = json.load(sys.stdin)
    run = {
        "spawn": run_spawn,
        "spawn-nosite": lambda job, workdir, index: run_spawn(job, workdir, index, ("-S",)),
        "fork": run_fork,
    }[args.mode]
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            passed = sum(pool.map(lambda pair: run(pair[1], workdir, pair[0]), enumerate(jobs)))
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "mode": args.mode,
                "workers": args.workers,
                "programs": len(jobs),
                "seconds": seconds,
                "executions_per_second": len(jobs) / seconds,
                "passed": passed,
            }
        )
    )


if __name__ == "__main__":
    main()
