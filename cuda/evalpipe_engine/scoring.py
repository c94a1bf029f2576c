"""The `score` op: per-row negative log-likelihood with windows for long rows (rules in docs/engine-protocol.md).

A row of text is tokenized without special tokens; with add_bos the BOS id is put in front as context. Position 0
of the resulting sequence is never scored. Two window plans (`windowing`):

- "evalpipe" (the default): windows of at most `max_length` tokens (the BOS included) start at 0 and advance by
  `stride`, but never past the last token scored so far (so each window has at least one token of context); a
  window scores the positions after the previous window's end. Every position 1..N-1 is scored exactly once.
- "lm-eval": lm-evaluation-harness's rolling loglikelihood (get_rolling_token_windows with context_len=1 and
  max_seq_len = max_length, then make_disjoint_window): the model sees `max_length` tokens per window and scores
  as many. The first window is the prefix token (BOS, else EOS: lm-eval's prefix_token_id) and the text's first
  max_length - 1 tokens, scoring its first max_length tokens; each next window scores the next max_length tokens
  from the max_length tokens before each; the last one is right-aligned (it ends at the last token and takes the
  tokens before its scored ones as context). Every text token is scored exactly once.
Request params are checked against schemas/engine/score.json first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .errors import BadRequest, Unsupported
from .request_schemas import check_params

if TYPE_CHECKING:
    from .loading import LoadedModel

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


def plan_lm_eval_windows(n_text: int, max_length: int) -> list[tuple[int, int, int]]:
    """lm-eval's rolling windows for a text of n_text tokens in the sequence [prefix] + text (N = n_text + 1), as
    (begin, end, first_scored) over that sequence: the model runs on seq[begin:end-1] (at most max_length tokens;
    the last id of a window is a target only) and the window scores positions first_scored..end-1. With
    context_len=1 lm-eval predicts max_length tokens per window: the first window predicts text[:max_length] from
    [prefix] + text[:max_length-1]; the next ones predict the following max_length tokens (the last one fewer), each
    from the max_length tokens just before its last prediction, so the last window is right-aligned."""
    if n_text < 1:
        return []
    first = min(max_length, n_text)
    out = [(0, first + 1, 1)]
    predicted = first  # text tokens scored so far; text token i is sequence position i + 1
    while predicted < n_text:
        count = min(n_text - predicted, max_length)
        end_text = predicted + count
        out.append((end_text - max_length, end_text + 1, predicted + 1))
        predicted = end_text
    return out


def _given(params: dict[str, Any], key: str, default: int) -> int:
    """A schema-checked integer parameter; absent or null: the default."""
    value = params.get(key)
    return default if value is None else int(value)


def _rows(params: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, text) of each schema-checked row, after the checks that span rows."""
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    for row in params["rows"]:
        index, text = row["index"], row["text"]
        if index in seen:
            raise BadRequest(f"row index {index} appears twice", hint="give each row a unique index")
        seen.add(index)
        if not text:
            raise BadRequest(f"row {index} is empty", hint="drop empty rows before scoring")
        out.append((index, text))
    return out


def score(loaded: LoadedModel, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    check_params("score", params)
    facts = loaded.facts
    model_max = facts.max_position_embeddings or DEFAULT_MAX_LENGTH
    max_length = _given(params, "max_length", min(model_max, DEFAULT_MAX_LENGTH))
    if max_length > model_max:
        raise BadRequest(
            f"max_length {max_length} exceeds the model's maximum of {model_max} positions",
            hint=f"use max_length <= {model_max}",
        )
    stride = _given(params, "stride", max_length)
    if stride > max_length:
        raise BadRequest(f"stride = {stride} is out of range", hint=f"use a value in [1, {max_length}]")
    budget = max(_given(params, "token_budget", DEFAULT_TOKEN_BUDGET), max_length)
    windowing = params.get("windowing") or "evalpipe"
    lm_eval = windowing == "lm-eval"
    if lm_eval:
        if params.get("stride") is not None and stride != max_length:
            raise BadRequest(
                f"stride {stride} does not apply to windowing lm-eval (its windows advance by max_length)",
                hint="leave stride out with windowing lm-eval",
            )
        if params.get("add_bos") is False:
            raise BadRequest(
                "windowing lm-eval always scores the first token after the prefix token; add_bos false contradicts it",
                hint="leave add_bos out with windowing lm-eval",
            )
    # default: loading.special_tokens' rule (the Llama family follows its tokenizer's add_bos_token)
    add_bos = loaded.score_add_bos if params.get("add_bos") is None else bool(params["add_bos"])
    if add_bos and facts.bos_token_id is None:
        raise BadRequest("add_bos is true but the model has no bos_token_id", hint="pass add_bos: false")
    # lm-eval's prefix_token_id for HF models: the tokenizer's BOS, else its EOS (StarCoder2: <|endoftext|> both).
    prefix = facts.bos_token_id if facts.bos_token_id is not None else facts.eos_token_id
    if lm_eval:
        if prefix is None:
            raise BadRequest("windowing lm-eval needs a bos_token_id or eos_token_id as the prefix token")
        add_bos = True
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
            ids.insert(0, int(prefix if lm_eval else facts.bos_token_id))  # type: ignore[arg-type]
        sequences.append(torch.tensor(ids, dtype=torch.long))

    if lm_eval:
        windows = [
            Window(r, b, e, f)
            for r, seq in enumerate(sequences)
            for b, e, f in plan_lm_eval_windows(len(seq) - 1, max_length)
        ]
    else:
        windows = [
            Window(r, b, e, f)
            for r, seq in enumerate(sequences)
            for b, e, f in plan_windows(len(seq), max_length, stride)
        ]
    # The tokens the model runs on per window: lm-eval windows end with a target-only id.
    inputs_of = (lambda w: w.end - w.begin - 1) if lm_eval else (lambda w: w.end - w.begin)
    # Group similar lengths (the HF backend pads within a group) under the padded token budget.
    order = sorted(windows, key=lambda w: w.end - w.begin, reverse=True)
    groups: list[list[Window]] = []
    for w in order:
        if groups and (len(groups[-1]) + 1) * inputs_of(groups[-1][0]) <= budget:
            groups[-1].append(w)
        else:
            groups.append([w])

    nll = [0.0] * len(rows)
    scored = [0] * len(rows)
    n_windows = [0] * len(rows)
    done = 0
    for group in groups:
        chunks = [sequences[w.row][w.begin : w.end] for w in group]
        if lm_eval:
            logprobs = loaded.backend.target_logprobs(chunks, run_last=False)
        else:
            logprobs = loaded.backend.target_logprobs(chunks)
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
    return {"rows": out_rows, "max_length": max_length, "stride": stride, "add_bos": add_bos, "windowing": windowing}
