"""Versions and device facts for `info` (and for run manifests)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from typing import Any

import torch

from . import ENGINE_VERSION, PROTOCOL_VERSION


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def _nvidia_driver(timeout_s: float = 5.0) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = out.stdout.strip().splitlines()
    return line[0].strip() if out.returncode == 0 and line else None


def device_info(device: torch.device | None = None) -> dict[str, Any]:
    """The CUDA device (index 0 unless given) when torch sees one, else the CPU."""
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        index = 0 if device is None or device.index is None else device.index
        props = torch.cuda.get_device_properties(index)
        return {
            "type": "cuda",
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "total_gib": round(props.total_memory / 2**30, 2),
            "driver": _nvidia_driver(),
            "cuda": torch.version.cuda,
            "count": torch.cuda.device_count(),
        }
    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "capability": None,
        "total_gib": None,
        "driver": None,
        "cuda": torch.version.cuda,
        "count": 0,
        "threads": torch.get_num_threads(),
    }


def system_info() -> dict[str, Any]:
    return {
        "engine_version": ENGINE_VERSION,
        "protocol": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "triton": _version("triton"),
        "device": device_info(),
    }
