"""Typed reads of a JSON request body's fields, each refusing a bad value with one 400 naming the field.

A field that is absent or null takes its default, as the OpenAI API treats them. JSON booleans are never taken as
numbers (Python's bool is an int), and numbers must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, overload

from .api_errors import bad_value, unsupported


def check_known(body: dict[str, Any], known: Iterable[str], where: str) -> None:
    """Refuse field names this endpoint does not know, so a typo never silently falls back to a default."""
    allowed = set(known)
    extra = sorted(set(body) - allowed)
    if extra:
        names = ", ".join(extra)
        raise unsupported(extra[0], f"unknown field(s) {names} for {where} (supported: {', '.join(sorted(allowed))})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@overload
def read_int(body: dict[str, Any], name: str, default: int, lo: int | None = None, hi: int | None = None) -> int: ...


@overload
def read_int(
    body: dict[str, Any], name: str, default: None, lo: int | None = None, hi: int | None = None
) -> int | None: ...


def read_int(
    body: dict[str, Any], name: str, default: int | None, lo: int | None = None, hi: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        raise bad_value(f"{name} must be an integer, got {_show(value)}", name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad_value(f"{name} = {value} is out of range: {_range(lo, hi)}", name)
    return value


def read_number(body: dict[str, Any], name: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_value(f"{name} must be a number, got {_show(value)}", name)
    if value < lo or value > hi or (lo_open and value == lo):
        low = f"({lo:g}" if lo_open else f"[{lo:g}"
        raise bad_value(f"{name} = {value:g} is out of range: use a value in {low}, {hi:g}]", name)
    return float(value)


def read_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_value(f"{name} must be true or false, got {_show(value)}", name)
    return value


def read_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_value(f"{name} must be a string, got {_show(value)}", name)
    return value


def read_stop(body: dict[str, Any]) -> tuple[str, ...]:
    """`stop`: a string or a list of non-empty strings; absent or null: none (EOS still stops)."""
    value = body.get("stop")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise bad_value(f"stop must be a string or a list of strings, got {_show(value)}", "stop")
    if any(s == "" for s in items):
        raise bad_value("stop holds an empty string, which would stop before any text", "stop")
    return tuple(dict.fromkeys(items))


def read_stream_options(body: dict[str, Any], stream: bool) -> bool:
    """`stream_options: {include_usage}` (streaming only): whether a last chunk carries the usage."""
    value = body.get("stream_options")
    if value is None:
        return False
    if not stream:
        raise bad_value("stream_options is only allowed with stream: true", "stream_options")
    if not isinstance(value, dict):
        raise bad_value(f"stream_options must be an object, got {_show(value)}", "stream_options")
    check_known(value, ("include_usage", "continuous_usage_stats"), "stream_options")
    if value.get("continuous_usage_stats"):
        raise unsupported("stream_options.continuous_usage_stats", "not supported (only include_usage)")
    return read_bool(value, "include_usage", False)


def refuse_unless_default(body: dict[str, Any], name: str, defaults: tuple[Any, ...], what: str) -> None:
    """A field we accept only at its no-op value (clients often send `frequency_penalty: 0`)."""
    value = body.get(name)
    if value is None or (not isinstance(value, bool) and any(value == d for d in defaults)):
        return
    raise unsupported(name, f"{what}; got {_show(value)}")


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"use a value in [{lo}, {hi}]"
    if lo is not None:
        return f"use a value >= {lo}"
    return f"use a value <= {hi}"


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."
