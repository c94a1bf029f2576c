"""The window plan: every position 1..N-1 scored exactly once, windows within max_length, each with context."""

from __future__ import annotations

import itertools

import pytest

from evalpipe_engine.scoring import plan_windows

CASES = [
    (n, m, s)
    for n, m, s in itertools.product([1, 2, 3, 7, 64, 65, 130, 1000], [2, 3, 8, 64], [1, 2, 5, 8, 64])
    if s <= m
]


@pytest.mark.parametrize(("n", "max_length", "stride"), CASES)
def test_each_position_scored_once_with_context(n: int, max_length: int, stride: int) -> None:
    plan = plan_windows(n, max_length, stride)
    scored: list[int] = []
    for begin, end, first in plan:
        assert 0 <= begin < first <= end <= n
        assert end - begin <= max_length
        scored.extend(range(first, end))
    assert scored == list(range(1, n))  # in order, none twice, none skipped
    if n < 2:
        assert plan == []


def test_windows_advance_by_stride_and_keep_context() -> None:
    # stride < max_length: windows start at 0, stride, 2*stride...; each scores what the previous did not.
    assert plan_windows(20, 8, 4) == [(0, 8, 1), (4, 12, 8), (8, 16, 12), (12, 20, 16)]
    # stride == max_length: the next window starts at the previous window's last token, kept as context.
    assert plan_windows(20, 8, 8) == [(0, 8, 1), (7, 15, 8), (14, 20, 15)]
    # a row that fits is one window scoring everything after position 0
    assert plan_windows(5, 8, 8) == [(0, 5, 1)]
