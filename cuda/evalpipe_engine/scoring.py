"""The `score` op: per-row negative log-likelihood with windows for long rows (rules in docs/engine-protocol.md).

A row of text is tokenized without special tokens; with add_bos the BOS id is put in front as context. Position 0
of the resulting sequence is never scored. Windows of at most `max_length` tokens start at 0 and advance by
`stride`, but never past the last token scored so far (so each window has at least one token of context); a
window scores the positions after the previous window's end. Every position 1..N-1 is scored exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .errors import BadRequest, Unsupported

if TYPE_CHECKING:
    from .loading import LoadedModel

SCORE_PARAMS: tuple[str, ...] = ("rows", "max_length", "stride", "add_bos", "token_budget")
DEFAULT_MAX_LENGTH = 4096
DEFAULT_TOKEN_BUDGET = 16384

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Window:
    row: int  # position of the row in the request
    begin: int  # the window's tokens are seq[begin:end]
    end: int
    first_scored: int  # it scores positions first_scored..end-1


def plan_windows(n: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) for a sequence of n tokens. Empty when there is nothing to score (n < 2)."""
    if n < 2:
        return []
    out: list[tuple[int, int, int]] = []
    begin, scored_to = 0, 1  # positions < scored_to are done (position 0 is context only)
    while True:
        end = min(begin + max_length, n)
        out.append((begin, end, scored_to))
        scored_to = end
        if end == n:
            return out
        begin = min(begin + stride, end - 1)


def _int_param(params: dict[str, Any], key: str, default: int, low: int, high: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{key} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise BadRequest(f"{key} = {value} is out of range", hint=f"use a value {bound}")
    return value


def _rows(params: dict[str, Any]) -> list[tuple[int, str]]:
    rows = params.get("rows")
    if not isinstance(rows, list):
        raise BadRequest("rows must be a list of {index, text}", hint='e.g. {"rows":[{"index":0,"text":"x"}]}')
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    for pos, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"rows[{pos}] must be an object {{index, text}}")
        index = row.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise BadRequest(f"rows[{pos}].index must be an integer, got {index!r}")
        if index in seen:
            raise BadRequest(f"row index {index} appears twice", hint="give each row a unique index")
        seen.add(index)
        text = row.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"row {index} text must be a string, got {type(text).__name__}")
        if not text:
            raise BadRequest(f"row {index} is empty", hint="drop empty rows before scoring")
        out.append((index, text))
    return out


def score(loaded: LoadedModel, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    unknown = sorted(set(params) - set(SCORE_PARAMS))
    if unknown:
        raise BadRequest(f"unknown parameter(s) {', '.join(unknown)}", hint=f"use {', '.join(SCORE_PARAMS)}")
    facts = loaded.facts
    model_max = facts.max_position_embeddings or DEFAULT_MAX_LENGTH
    max_length = _int_param(params, "max_length", min(model_max, DEFAULT_MAX_LENGTH), 2)
    if max_length > model_max:
        raise BadRequest(
            f"max_length {max_length} exceeds the model's maximum of {model_max} positions",
            hint=f"use max_length <= {model_max}",
        )
    stride = _int_param(params, "stride", max_length, 1, max_length)
    budget = max(_int_param(params, "token_budget", DEFAULT_TOKEN_BUDGET, 1), max_length)
    add_bos = params.get("add_bos", facts.bos_token_id is not None)
    if not isinstance(add_bos, bool):
        raise BadRequest(f"add_bos must be true or false, got {add_bos!r}")
    if add_bos and facts.bos_token_id is None:
        raise BadRequest("add_bos is true but the model has no bos_token_id", hint="pass add_bos: false")
    rows = _rows(params)

    encodings = loaded.tokenizer.encode_batch([text for _, text in rows], add_special_tokens=False)
    sequences: list[torch.Tensor] = []
    for (index, _), enc in zip(rows, encodings, strict=True):
        ids = list(enc.ids)
        if not ids:
            raise BadRequest(f"row {index} has no tokens after tokenization", hint="drop the row")
        if max(ids) >= facts.vocab_size:
            raise Unsupported(
                f"the tokenizer gives id {max(ids)} for row {index}, beyond the model's vocabulary "
                f"of {facts.vocab_size}",
                hint="the tokenizer.json does not match the weights",
            )
        if add_bos:
            ids.insert(0, int(facts.bos_token_id))  # type: ignore[arg-type]
        sequences.append(torch.tensor(ids, dtype=torch.long))

    windows = [
        Window(r, b, e, f) for r, seq in enumerate(sequences) for b, e, f in plan_windows(len(seq), max_length, stride)
    ]
    # Group similar lengths (the HF backend pads within a group) under the padded token budget.
    order = sorted(windows, key=lambda w: w.end - w.begin, reverse=True)
    groups: list[list[Window]] = []
    for w in order:
        if groups and (len(groups[-1]) + 1) * (groups[-1][0].end - groups[-1][0].begin) <= budget:
            groups[-1].append(w)
        else:
            groups.append([w])

    nll = [0.0] * len(rows)
    scored = [0] * len(rows)
    n_windows = [0] * len(rows)
    done = 0
    for group in groups:
        logprobs = loaded.backend.target_logprobs([sequences[w.row][w.begin : w.end] for w in group])
        for w, lp in zip(group, logprobs, strict=True):
            picked = lp[w.first_scored - w.begin - 1 :].double()
            nll[w.row] -= float(picked.sum())
            scored[w.row] += int(picked.numel())
            n_windows[w.row] += 1
        done += len(group)
        emit("progress", {"done": done, "total": len(windows), "unit": "windows"})

    out_rows = []
    for r, (index, text) in enumerate(rows):
        if not math.isfinite(nll[r]):
            raise Unsupported(f"row {index} has a non-finite NLL", hint="try fp32 or another precision")
        out_rows.append(
            {
                "index": index,
                "nll_sum": nll[r],
                "n_scored_tokens": scored[r],
                "n_tokens": len(sequences[r]) - (1 if add_bos else 0),
                "n_bytes": len(text.encode("utf-8")),
                "n_windows": n_windows[r],
            }
        )
    return {"rows": out_rows, "max_length": max_length, "stride": stride, "add_bos": add_bos}
