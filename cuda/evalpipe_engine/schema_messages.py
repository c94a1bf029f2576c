"""One line (and a hint) per schema violation, worded as the engine's `bad_request` errors are.

The TypeScript client words its own refusals the same way (src/backends/engine/schema-messages.ts), and the shared
fixtures (schemas/engine/examples/) hold the expected wording, so a field reads alike on both sides:
`n = 0 is out of range: n must be an integer >= 1`, `unknown quant "fp7"` (hint: use one of fp32, ...),
`unknown parameter(s) beams`, `row 2 text must be a string, got 42`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .json_schema import Violation

TYPE_PHRASES: dict[str, tuple[str, ...]] = {
    "null": ("null",),
    "boolean": ("true", "false"),
    "integer": ("an integer",),
    "number": ("a number",),
    "string": ("a string",),
    "array": ("a list",),
    "object": ("an object",),
}
RANGE_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_LONGEST_VALUE = 80


def render(value: Any) -> str:
    """A value as compact JSON (as JavaScript's JSON.stringify writes it), cut to a readable length."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def plain(value: Any) -> str:
    """An enum option for a hint: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else render(value)


def or_list(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def type_phrase(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else types
    return or_list([phrase for name in names for phrase in TYPE_PHRASES[name]])


def bounds(schema: Mapping[str, Any]) -> str:
    """The node's range keywords as text: ">= 1", "in (0, 1]", "<= 4096"."""
    low = ("[", schema["minimum"]) if "minimum" in schema else None
    if "exclusiveMinimum" in schema:
        low = ("(", schema["exclusiveMinimum"])
    high = ("]", schema["maximum"]) if "maximum" in schema else None
    if "exclusiveMaximum" in schema:
        high = (")", schema["exclusiveMaximum"])
    if low and high:
        return f"in {low[0]}{render(low[1])}, {render(high[1])}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {render(low[1])}"
    assert high is not None
    return f"{'<=' if high[0] == ']' else '<'} {render(high[1])}"


def field_of(v: Violation, name: str) -> str:
    """A property of the object at `v` named as a person reads it."""
    if not v.where:
        return name
    return f"{v.where} {name}" if v.named else f"{v.where}.{name}"


def example_hint(schema: Mapping[str, Any]) -> str | None:
    examples = schema.get("examples")
    return f"e.g. {render(examples[0])}" if isinstance(examples, list) and examples else None


def describe(v: Violation) -> tuple[str, str | None]:
    """(message, hint) for one violation."""
    s, where = v.schema, v.where or "params"
    if v.keyword == "type":
        return f"{where} must be {type_phrase(s['type'])}, got {render(v.value)}", example_hint(s)
    if v.keyword == "required":
        properties = s.get("properties", {})
        first = properties.get(v.names[0], {})
        missing = " and ".join(field_of(v, name) for name in v.names)
        return f"{missing} {'is' if len(v.names) == 1 else 'are'} required", example_hint(first)
    if v.keyword == "additionalProperties":
        allowed = ", ".join(s.get("properties", {}))
        names = ", ".join(v.names)
        hint = f"use {allowed}" if allowed else "send no fields here"
        if not v.path:
            return f"unknown parameter(s) {names}", hint
        return f"{where} has unknown field(s) {names}", hint
    if v.keyword == "enum":
        options = ", ".join(plain(option) for option in s["enum"] if option is not None)
        return f"unknown {where} {render(v.value)}", f"use one of {options}"
    if v.keyword == "const":
        return f"{where} must be {render(s['const'])}, got {render(v.value)}", None
    if v.keyword in RANGE_KEYWORDS:
        types = s.get("type", "number")
        kinds = [t for t in ([types] if isinstance(types, str) else types) if t in ("integer", "number")]
        kind = type_phrase(kinds[0] if kinds else "number")
        return f"{where} = {render(v.value)} is out of range: {where} must be {kind} {bounds(s)}", None
    if v.keyword == "minLength":
        n = s["minLength"]
        return (f"{where} must be a non-empty string" if n == 1 else f"{where} must be {n} characters or more"), None
    if v.keyword == "maxLength":
        return f"{where} must be {s['maxLength']} characters or fewer", None
    if v.keyword == "minItems":
        n = s["minItems"]
        return (f"{where} must be a non-empty list" if n == 1 else f"{where} must have {n} items or more"), None
    if v.keyword == "maxItems":
        return f"{where} must have {s['maxItems']} items or fewer", None
    if v.keyword == "uniqueItems":
        return f"{where} must not hold the same item twice, got {render(v.value)}", None
    if v.keyword == "anyOf":
        return f"{where} matches none of its allowed forms, got {render(v.value)}", None
    return f"{where} is not allowed here", None
