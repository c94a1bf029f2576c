"""Host-to-device copies that do not wait for the device: on CUDA through pinned memory, asynchronously, so that
the host goes on while the work already queued runs (a copy from pageable memory may wait for it: the overlapped
generate loop, whose admissions are queued behind a running step, relies on this). Elsewhere a plain copy."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def tensor_to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`host` on `device`; from the CPU to CUDA without waiting for the device's queued work."""
    if device.type != "cuda" or host.device.type != "cpu":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def to_device(values: Sequence[int], device: torch.device) -> torch.Tensor:
    """An int64 tensor of `values` on `device`, without waiting for the device's queued work."""
    return tensor_to_device(torch.tensor(list(values), dtype=torch.int64), device)
