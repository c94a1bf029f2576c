"""The generate loop's clock (sample_rules.HostClock): what the benchmarks read of each kind of work."""

from __future__ import annotations

import torch

from evalpipe_engine.sample_rules import HostClock


def test_host_clock_counts_and_sums_each_kind_of_work() -> None:
    clock = HostClock()
    cpu = torch.device("cpu")

    def admit(x: torch.Tensor) -> torch.Tensor:
        return x @ x

    def step(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    x = torch.ones(64, 64)
    for _ in range(3):
        clock.timed(cpu, step, x, a_step=True)
    clock.timed(cpu, admit, x)
    assert clock.steps == 3
    calls = clock.calls_by_work()
    assert {name: c["calls"] for name, c in calls.items()} == {"step": 3, "admit": 1}
    busy = clock.busy_by_work()
    assert set(busy) == {"step", "admit"} and all(v > 0 for v in busy.values())
    assert clock.busy_s() == sum(busy.values())
    for name, c in calls.items():
        assert 0 < c["device_ms_median"] <= c["device_ms_max"]
        assert c["host_s"] == busy[name]  # off CUDA the host clock is the device clock
