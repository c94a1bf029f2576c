"""Running Triton kernels through the CPU interpreter from a CPU test run: Triton picks the interpreter when it is
first imported, so the kernels' code runs in a child Python started with TRITON_INTERPRET=1 and cuda/ on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CUDA_DIR = str(Path(__file__).resolve().parents[1])


def run_interpreted(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`python *args` in a child with TRITON_INTERPRET=1; its output is captured, its exit code not checked."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    env["PYTHONPATH"] = CUDA_DIR + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def assert_interpreted_tests_pass(test_file: str) -> None:
    """Re-run `test_file`'s tests named *interp* in an interpreter child and require them all to pass."""
    proc = run_interpreted(["-m", "pytest", "-q", "-p", "no:cacheprovider", test_file, "-k", "interp"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, proc.stdout[-2000:]
