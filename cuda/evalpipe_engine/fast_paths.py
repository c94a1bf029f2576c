"""The fast-path switches: engine options with environment-variable defaults.

Each switch turns one fast path off for A/B runs (all are on by default since their GPU tests passed):

- `cuda_graphs` (EVALPIPE_CUDA_GRAPHS): decode steps as CUDA graph replays (decoding.py);
- `decode_kernel` (EVALPIPE_DECODE_KERNEL): Triton flash-decoding attention in decode steps (decoding.py);
- `cuda_rtc` (EVALPIPE_CUDA_RTC): the one-row decode GEMV (int8/fp8/nf4 and dense bf16/fp16 weights, GELU fused) in
  CUDA C++ built by NVRTC (kernels/gemv_cuda.py);
- `fp8_fused` (EVALPIPE_FP8_FUSED): the fp8 prefill quantizes activations inside add+LayerNorm and GELU (model.py).

The `load` op takes them as `fast_paths: {cuda_graphs: false, ...}`; a switch it leaves out (or null) takes its
environment variable's value then (on unless the variable is "0"), and the load result reports every switch as
resolved, so the run's manifest records which paths ran. A `FastPaths` whose field is None (what a model built
directly in Python has: tests, benchmarks) reads the variable each time the path is chosen, as the engine always did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

GRAPHS_ENV = "EVALPIPE_CUDA_GRAPHS"
KERNEL_ENV = "EVALPIPE_DECODE_KERNEL"
RTC_ENV = "EVALPIPE_CUDA_RTC"
FUSED_ENV = "EVALPIPE_FP8_FUSED"
ENVIRONMENT: dict[str, str] = {
    "cuda_graphs": GRAPHS_ENV,
    "decode_kernel": KERNEL_ENV,
    "cuda_rtc": RTC_ENV,
    "fp8_fused": FUSED_ENV,
}


def env_switch(variable: str, environ: Mapping[str, str] | None = None) -> bool:
    """A switch's default: on unless the variable is set to 0."""
    return (os.environ if environ is None else environ).get(variable, "1").strip() != "0"


def switch_on(value: bool | None, variable: str) -> bool:
    """An explicit value wins; None follows the environment variable now."""
    return env_switch(variable) if value is None else value


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths run. None: the environment variable decides each time (see the module docstring)."""

    cuda_graphs: bool | None = None
    decode_kernel: bool | None = None
    cuda_rtc: bool | None = None
    fp8_fused: bool | None = None

    @classmethod
    def resolve(cls, options: Mapping[str, bool | None] | None, environ: Mapping[str, str] | None = None) -> FastPaths:
        """Every switch decided: the value in `options` (the load op's `fast_paths`, already schema-checked),
        else its environment variable's."""
        given = options or {}
        chosen: dict[str, bool] = {}
        for name, variable in ENVIRONMENT.items():
            value = given.get(name)
            chosen[name] = env_switch(variable, environ) if value is None else bool(value)
        return cls(**chosen)

    @property
    def use_cuda_graphs(self) -> bool:
        return switch_on(self.cuda_graphs, GRAPHS_ENV)

    @property
    def use_decode_kernel(self) -> bool:
        return switch_on(self.decode_kernel, KERNEL_ENV)

    @property
    def use_fp8_fused(self) -> bool:
        return switch_on(self.fp8_fused, FUSED_ENV)

    def to_json(self) -> dict[str, bool]:
        """The switches as the load result reports them (None read from the environment now)."""
        return {f.name: switch_on(getattr(self, f.name), ENVIRONMENT[f.name]) for f in fields(self)}
