"""Injected per-unit faults, for the tests that prove one failing unit cannot stop a run.

`EVALPIPE_ENGINE_FAULTS` holds a JSON object read when a request arrives (unset: no faults, nothing checked):

Out of memory is checked first, as a real one strikes the whole batch before any unit's own fault.

- `generate_keys`: a generate request that holds any of these prompt keys fails with an internal error;
- `score_rows`: a score request that holds any of these row indices fails with an internal error;
- `oom_above`: a generate request decoding more than this many samples at once (its sample count, capped by
  `max_batch_rows`) or a score request of more than this many rows fails as out of memory.

The errors are the typed errors a real failure gives (`internal`, `oom`), answered the same way, so the pipeline's
handling of them is tested against the real engine process rather than a stand-in.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import BadRequest, InternalError, OutOfMemory

FAULTS_ENV = "EVALPIPE_ENGINE_FAULTS"


def _faults() -> dict[str, Any]:
    raw = os.environ.get(FAULTS_ENV, "").strip()
    if not raw:
        return {}
    try:
        faults = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{FAULTS_ENV} is not JSON: {exc.msg}", hint=f"unset {FAULTS_ENV}") from exc
    if not isinstance(faults, dict):
        raise BadRequest(f"{FAULTS_ENV} must be a JSON object", hint=f"unset {FAULTS_ENV}")
    return faults


def check_generate_faults(params: dict[str, Any]) -> None:
    faults = _faults()
    if not faults:
        return
    requests = params.get("requests") or []
    oom_above = faults.get("oom_above")
    if isinstance(oom_above, int):
        n = int(params.get("n") or 1)
        samples = sum(len(r.get("samples") or range(n)) for r in requests if isinstance(r, dict))
        rows = min(samples, int(params.get("max_batch_rows") or samples))
        if rows > oom_above:
            raise OutOfMemory(f"generate: injected out of memory at {rows} rows ({FAULTS_ENV})")
    keys = {str(request.get("key")) for request in requests if isinstance(request, dict)}
    failing = sorted(keys & {str(key) for key in faults.get("generate_keys", [])})
    if failing:
        raise InternalError(f"generate: injected fault for prompt {failing[0]} ({FAULTS_ENV})")


def check_score_faults(params: dict[str, Any]) -> None:
    faults = _faults()
    if not faults:
        return
    rows = [row.get("index") for row in params.get("rows") or [] if isinstance(row, dict)]
    oom_above = faults.get("oom_above")
    if isinstance(oom_above, int) and len(rows) > oom_above:
        raise OutOfMemory(f"score: injected out of memory at {len(rows)} rows ({FAULTS_ENV})")
    failing = sorted(set(rows) & set(faults.get("score_rows", [])))
    if failing:
        raise InternalError(f"score: injected fault for row {failing[0]} ({FAULTS_ENV})")
