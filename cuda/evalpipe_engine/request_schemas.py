"""The engine ops' JSON Schemas (schemas/engine/<op>.json at the repository root, shared with the TypeScript
client) and the checks every op makes with them.

Each op file holds `$defs/params` (the request's params), `$defs/result` (its success result) and, for ops that
stream, `$defs/progress` / `$defs/partial` (event data); `protocol.json` holds the line envelopes. `check_params`
is the first thing each op does (loading.load_model, scoring.score, generation.generate, bench.run_bench and the
server's info/shutdown): a violation is a `bad_request` naming the field and saying what is allowed. What a schema
cannot say (a row index given twice, a prompt longer than the model, stride past max_length) the op checks after.

The files are found beside the package: cuda/evalpipe_engine -> ../../schemas/engine, which is where they are in
every copy of the repository the engine runs from (a checkout, the device machine's copy of the working tree,
the npm package). `EVALPIPE_ENGINE_SCHEMAS` points elsewhere (a test, an unusual install).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from .errors import BadRequest
from .json_schema import SchemaDefinitionError, SchemaSet, Violation
from .schema_messages import describe

SCHEMAS_ENV = "EVALPIPE_ENGINE_SCHEMAS"
DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "engine"
ENGINE_OPS: tuple[str, ...] = ("info", "load", "score", "generate", "bench", "shutdown")


class SchemaFilesError(RuntimeError):
    """The schema files are missing or unusable: the engine cannot check requests, so it does not start."""


def schema_dir() -> Path:
    configured = os.environ.get(SCHEMAS_ENV)
    return Path(configured) if configured else DEFAULT_SCHEMA_DIR


@functools.cache
def engine_schemas() -> SchemaSet:
    """Every schemas/engine/*.json, loaded and checked once per process."""
    directory = schema_dir()
    files = sorted(directory.glob("*.json"))
    missing = [op for op in (*ENGINE_OPS, "protocol") if not (directory / f"{op}.json").is_file()]
    if missing:
        raise SchemaFilesError(
            f"the engine's request schemas are missing from {directory}: {', '.join(f'{m}.json' for m in missing)} "
            f"(run the engine from a copy of the evalpipe repository, or set {SCHEMAS_ENV})"
        )
    try:
        return SchemaSet({path.name: json.loads(path.read_text(encoding="utf-8")) for path in files})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SchemaDefinitionError) as exc:
        raise SchemaFilesError(f"the engine's request schemas in {directory} cannot be used: {exc}") from exc


def params_violations(op: str, params: Any) -> list[Violation]:
    return engine_schemas().validate(f"{op}.json#/$defs/params", params)


def result_violations(op: str, result: Any) -> list[Violation]:
    return engine_schemas().validate(f"{op}.json#/$defs/result", result)


def event_violations(op: str, event: str, data: Any) -> list[Violation]:
    return engine_schemas().validate(f"{op}.json#/$defs/{event}", data)


def check_params(op: str, params: Any) -> None:
    """Raise BadRequest for the first way `params` breaks schemas/engine/<op>.json."""
    violations = params_violations(op, params)
    if violations:
        message, hint = describe(violations[0])
        raise BadRequest(message, hint=hint)
