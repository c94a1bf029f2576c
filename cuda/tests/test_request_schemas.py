"""The engine's own JSON Schema validator (json_schema.py) on the op schemas in schemas/engine/: every shared
fixture in schemas/engine/examples/ passes or fails as it says, at the field and with the words it says (the
TypeScript client checks the same fixtures with ajv: src/backends/engine/engine-schemas.test.ts), and the engine's
own lists of choices are the schemas'."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalpipe_engine import server
from evalpipe_engine.attention import ATTN_BACKENDS
from evalpipe_engine.errors import ERROR_TYPES, BadRequest
from evalpipe_engine.json_schema import SchemaDefinitionError, SchemaSet
from evalpipe_engine.loading import ATTN_MODES, BACKENDS, DEVICES
from evalpipe_engine.quant.modes import QUANT_MODES
from evalpipe_engine.request_schemas import (
    ENGINE_OPS,
    SCHEMAS_ENV,
    check_params,
    engine_schemas,
    params_violations,
    schema_dir,
)
from evalpipe_engine.schema_messages import describe

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "schemas" / "engine" / "examples"


def _fixtures() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.glob("*.json"))]


def _cases(kind: str) -> list[Any]:
    out = []
    for fixture in _fixtures():
        for i, case in enumerate(fixture[kind]):
            out.append(pytest.param(fixture["op"], case, id=f"{fixture['op']}-{kind}-{i}"))
    return out


def test_the_schemas_are_found_in_the_repository_and_every_op_has_a_fixture() -> None:
    assert schema_dir() == REPO_ROOT / "schemas" / "engine"
    assert {f"{op}.json" for op in ENGINE_OPS} | {"protocol.json"} == set(engine_schemas().names)
    assert sorted(f["op"] for f in _fixtures()) == sorted(ENGINE_OPS)
    assert tuple(server.OPS) == ENGINE_OPS


@pytest.mark.parametrize(("op", "params"), _cases("valid"))
def test_valid_fixtures_pass(op: str, params: dict[str, Any]) -> None:
    assert params_violations(op, params) == []
    check_params(op, params)


@pytest.mark.parametrize(("op", "case"), _cases("invalid"))
def test_invalid_fixtures_fail_at_their_field_with_their_words(op: str, case: dict[str, Any]) -> None:
    violations = params_violations(op, case["params"])
    assert violations, "should be refused"
    first = violations[0]
    assert (first.pointer, first.keyword) == (case["pointer"], case["keyword"])
    assert describe(first)[0] == case["message"]
    with pytest.raises(BadRequest) as refused:
        check_params(op, case["params"])
    assert refused.value.message == case["message"]


def test_hints_say_what_to_use() -> None:
    with pytest.raises(BadRequest) as refused:
        check_params("load", {"model": "x", "quant": "fp7"})
    assert refused.value.hint == "use one of fp32, fp16, bf16, int8, nf4, fp8"
    with pytest.raises(BadRequest) as refused:
        check_params("generate", {"requests": [], "beams": 4})
    fields = "requests, n, temperature, top_p, max_new_tokens, seed, stop, add_bos, max_batch_rows, sampler"
    assert refused.value.hint == f"use {fields}"
    with pytest.raises(BadRequest) as refused:
        check_params("score", {"rows": 3})
    assert refused.value.hint is not None and refused.value.hint.startswith('e.g. [{"index":0')


def test_the_engines_choices_are_the_schemas() -> None:
    load = engine_schemas().document("load.json")["$defs"]
    params, result = load["params"]["properties"], load["result"]["properties"]

    def choices(node: dict[str, Any]) -> tuple[str, ...]:
        return tuple(option for option in node["enum"] if option is not None)

    assert choices(params["quant"]) == QUANT_MODES == choices(result["quant"])
    assert choices(params["attn"]) == ATTN_MODES == ATTN_BACKENDS == choices(result["attn"])
    assert choices(params["device"]) == DEVICES
    assert choices(params["backend"]) == BACKENDS
    protocol = engine_schemas().document("protocol.json")["$defs"]
    assert tuple(protocol["error"]["properties"]["type"]["enum"]) == ERROR_TYPES
    assert tuple(protocol["request"]["properties"]["op"]["enum"]) == ENGINE_OPS


# -- the validator itself --------------------------------------------------------------------------------------------


def _one(schema: dict[str, Any]) -> SchemaSet:
    return SchemaSet({"t.json": {"$defs": {"x": schema}}})


def test_json_types_are_strict() -> None:
    integer = _one({"type": "integer"})
    assert [integer.validate("t.json#/$defs/x", v) != [] for v in (1, -3, True, 2.0, "1", None)] == [
        False, False, True, True, True, True,
    ]  # fmt: skip
    number = _one({"type": "number"})
    assert [number.validate("t.json#/$defs/x", v) != [] for v in (1, 0.5, math.nan, math.inf, False)] == [
        False, False, True, True, True,
    ]  # fmt: skip
    assert _one({"enum": [1]}).validate("t.json#/$defs/x", True) != []
    assert _one({"const": 1}).validate("t.json#/$defs/x", 1.0) == []
    assert _one({"uniqueItems": True}).validate("t.json#/$defs/x", [1, True]) == []
    assert _one({"uniqueItems": True}).validate("t.json#/$defs/x", [{"a": 1, "b": 2}, {"b": 2, "a": 1}]) != []


def test_any_of_reports_the_branch_that_fits_the_type() -> None:
    schemas = SchemaSet(
        {
            "a.json": {"$defs": {"x": {"anyOf": [{"type": "null"}, {"$ref": "b.json#/$defs/y"}]}}},
            "b.json": {"$defs": {"y": {"type": "object", "required": ["k"]}}},
        }
    )
    assert schemas.validate("a.json#/$defs/x", None) == []
    assert schemas.validate("a.json#/$defs/x", {"k": 1}) == []
    (missing,) = schemas.validate("a.json#/$defs/x", {})
    assert (missing.keyword, missing.names) == ("required", ("k",))
    (neither,) = schemas.validate("a.json#/$defs/x", 3)
    assert neither.keyword == "anyOf"


def test_schemas_with_keywords_it_cannot_apply_are_refused() -> None:
    with pytest.raises(SchemaDefinitionError, match="pattern"):
        _one({"type": "string", "pattern": "^a"})
    with pytest.raises(SchemaDefinitionError, match="names no schema file"):
        _one({"$ref": "other.json#/$defs/y"})
    with pytest.raises(SchemaDefinitionError, match="points at nothing"):
        _one({"$ref": "#/$defs/missing"})
    with pytest.raises(SchemaDefinitionError, match="unknown type"):
        _one({"type": "int"})


def test_an_engine_without_its_schemas_does_not_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "cuda"), SCHEMAS_ENV: str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "evalpipe_engine", "serve"],
        input=b"",
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == b""
    assert b"request schemas are missing" in done.stderr and SCHEMAS_ENV.encode() in done.stderr
