"""What every benchmark script does with its record: write it atomically, and name the code that was timed."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(out: str | Path, record: dict[str, Any], indent: int = 1) -> None:
    """Temp file + rename in the target directory: a reader (or a crash) never sees half a record, so scripts can
    rewrite it after every measured model and keep what was measured if a later one fails."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(record, f, indent=indent)
        f.write("\n")
        tmp = f.name
    os.replace(tmp, path)


def git_commit() -> str:
    """HEAD of the checkout the script runs from; EVALPIPE_COMMIT where there is no git (the GPU machine gets a
    copy of the working tree), else "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("EVALPIPE_COMMIT") or "unknown"
