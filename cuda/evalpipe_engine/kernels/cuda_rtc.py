"""CUDA C++ kernels compiled at run time with NVRTC (no nvcc, no ninja, no PyTorch extension build).

PyTorch ships NVRTC and the driver-API glue for `torch.cuda._compile_kernel`; this module uses the two pieces behind
it (`_nvrtc_compile`, `_cuda_load_module`) to build one source into one module holding several `extern "C"` kernels,
once per process and device. Those are private PyTorch functions: when they are missing or the compile fails,
`load_module` raises `RtcUnavailable` with the reason, and callers fall back to their Triton kernels (the engine then
says so once on stderr). Launches go through `cuLaunchKernel` on PyTorch's current stream, so they are captured by
CUDA graphs like any other kernel.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import threading
from typing import Any

import torch

from ..fast_paths import RTC_ENV, env_switch


class RtcUnavailable(RuntimeError):
    """Run-time compilation is not available here (no CUDA, no NVRTC in this PyTorch, or the compile failed)."""


_lock = threading.Lock()
_modules: dict[tuple[str, int], dict[str, Any]] = {}
_failures: dict[tuple[str, int], str] = {}
_warned: set[str] = set()


def rtc_enabled() -> bool:
    """The cuda_rtc switch's environment default (fast_paths.py): the run-time-compiled kernels run unless
    EVALPIPE_CUDA_RTC=0 (then the Triton kernels do). On by default since their GPU tests
    (cuda/tests/test_gemv_cuda.py) passed on the H100 and the benchmark showed them faster (nf4 decode GEMV 1.5x the
    Triton one's speed; bench/results/quant-linears-h100-*-rtc*.json)."""
    return env_switch(RTC_ENV)


def load_module(source: str, kernel_names: list[str], device: torch.device) -> dict[str, Any]:
    """Compile `source` for `device`'s architecture (cached per process) -> {name: kernel}.

    A kernel is called as kernel(grid=(x, y, z), block=(x, y, z), args=[tensors and ints], stream=...): pass
    torch.cuda.current_stream() so the launch is ordered with (and captured like) PyTorch's own work."""
    if device.type != "cuda":
        raise RtcUnavailable("run-time compiled kernels need a CUDA device")
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (hashlib.sha256((source + "\0" + ",".join(kernel_names)).encode()).hexdigest(), index)
    with _lock:
        if key in _modules:
            return _modules[key]
        if key in _failures:
            raise RtcUnavailable(_failures[key])
        try:
            from torch.cuda._utils import _cuda_load_module, _nvrtc_compile
        except ImportError as exc:
            _failures[key] = f"this PyTorch ({torch.__version__}) has no NVRTC helpers: {exc}"
            raise RtcUnavailable(_failures[key]) from exc
        major, minor = torch.cuda.get_device_capability(index)
        try:
            with torch.cuda.device(index):
                # the name expression only has to exist; every extern "C" kernel lands in the same module.
                # Keywords, and either return shape: older PyTorch has a header_code parameter in third place and
                # returns the binary alone, newer ones return (binary, lowered name).
                compiled = _nvrtc_compile(
                    source, kernel_names[0], compute_capability=f"{major}{minor}", nvcc_options=["-std=c++17"]
                )
                binary = compiled[0] if isinstance(compiled, tuple) else compiled
                loaded = _cuda_load_module(binary, kernel_names)
                kernels = loaded if isinstance(loaded, dict) else {n: getattr(loaded, n) for n in kernel_names}
        except Exception as exc:  # any compile or load failure means: use the fallback
            _failures[key] = f"NVRTC build failed: {str(exc).strip()[:2000]}"
            raise RtcUnavailable(_failures[key]) from exc
        launch = next(iter(kernels.values())).__call__
        if "stream" not in inspect.signature(launch).parameters:
            # an early PyTorch launched these on the legacy default stream: wrong order, no graph capture
            _failures[key] = f"this PyTorch ({torch.__version__}) cannot launch run-time kernels on a chosen stream"
            raise RtcUnavailable(_failures[key])
        _modules[key] = kernels
        return kernels


def warn_fallback_once(what: str, reason: str) -> None:
    """One stderr line per kind of fallback, so a run says which kernels it used."""
    if what in _warned:
        return
    _warned.add(what)
    print(f"evalpipe engine: {what}: using the Triton kernel instead ({reason})", file=sys.stderr, flush=True)
