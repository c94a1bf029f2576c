"""A small JSON Schema validator for exactly the keywords the engine's schema files use (schemas/engine/*.json).

The engine runs where only torch, transformers and triton are installed, so it cannot lean on the `jsonschema`
package; the TypeScript side validates the same files with ajv (src/backends/engine/request-schemas.ts), and the shared
fixtures in schemas/engine/examples/ are checked by both (cuda/tests/test_request_schemas.py,
src/backends/engine/request-schemas.test.ts) so the two agree.

Supported (draft 2020-12 meaning): type (one name or a list), properties, required, additionalProperties (true,
false or a schema), items (one schema), enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
minLength, maxLength, minItems, maxItems, uniqueItems, anyOf, $ref (to "#/..." in the same file or "<file>#/..."
beside it), $defs; the annotations $schema, $id, $comment, title, description, examples, and our own `x-name`:
on an array's item schema, a template such as "row {index}" that names an item by its own fields in messages
("row 2 text" rather than "rows[0].text"). A schema that uses any other keyword is refused when it is loaded, so a
keyword this validator would silently ignore can never slip into a file.

JSON values are Python's `json.loads` values. Booleans are never numbers, and "integer" means a Python int: the
JSON text 2.0 (a float here) is not an integer, while JavaScript cannot tell it from 2. The TypeScript client never
writes 2.0, so the two sides meet only on values both can represent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JsonPath = tuple[str | int, ...]

ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "x-name"})
ASSERTIONS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "anyOf",
        "$ref",
        "$defs",
    }
)
TYPE_NAMES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


class SchemaDefinitionError(ValueError):
    """A schema file that this validator cannot apply faithfully (an unknown keyword, a bad $ref, a bad type)."""


@dataclass(frozen=True)
class Violation:
    """One way an instance fails its schema.

    `path` is where in the instance (for `required` and `additionalProperties`: the object's path), `where` the same
    place as a person reads it ("max_new_tokens", "requests[1].samples", "row 7 text"), `keyword` the schema keyword
    that failed, `schema` the schema node that holds it, `value` the instance value at `path`, and `names` the
    missing (required) or unexpected (additionalProperties) property names."""

    path: JsonPath
    where: str
    keyword: str
    schema: Mapping[str, Any]
    value: Any
    names: tuple[str, ...] = field(default=())
    named: bool = False  # `where` is an item's name from its `x-name` template ("row 7"), not a path

    @property
    def pointer(self) -> str:
        """The path as a JSON pointer ("/requests/0/samples"), ajv's `instancePath`."""
        return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in self.path)


def json_type_of(value: Any) -> str:
    """The JSON type name of a `json.loads` value ("integer" for ints, "number" for other finite floats)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def has_type(value: Any, name: str) -> bool:
    kind = json_type_of(value)
    return kind == name or (name == "number" and kind == "integer")


def canonical(value: Any) -> str:
    """A text equal for equal JSON values (keys sorted, 1 and 1.0 alike, true distinct from 1)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value)


def json_equal(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def item_name(template: str, item: Any, skip: str | None) -> str | None:
    """The `x-name` template filled from the item's own fields, or None when a field it names is missing, is not
    an integer or a non-empty string, or is `skip` (the field being reported: it cannot name itself)."""
    if not isinstance(item, dict):
        return None
    out, rest = "", template
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, closed, rest = after.partition("}")
        value = item.get(name)
        if not closed or name == skip:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            out += before + str(value)
        elif isinstance(value, str) and value:
            out += before + json.dumps(value, ensure_ascii=False)
        else:
            return None
    return out + rest


def child_where(where: str, part: str | int, named: bool) -> str:
    if isinstance(part, int):
        return f"{where}[{part}]"
    if not where:
        return part
    return f"{where} {part}" if named else f"{where}.{part}"


class SchemaSet:
    """The schema files of one directory, keyed by file name; `$ref`s resolve within and between them."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = dict(documents)
        for name, document in self._documents.items():
            self._check(document, name, "#")

    @property
    def names(self) -> list[str]:
        return sorted(self._documents)

    def document(self, name: str) -> Mapping[str, Any]:
        return self._documents[name]

    # -- loading ---------------------------------------------------------------------------------------------------

    def _check(self, node: Any, document: str, where: str) -> None:
        if not isinstance(node, dict):
            if isinstance(node, bool):
                return
            raise SchemaDefinitionError(f"{document} {where}: a schema must be an object or a boolean")
        unknown = sorted(set(node) - ANNOTATIONS - ASSERTIONS)
        if unknown:
            raise SchemaDefinitionError(
                f"{document} {where}: keyword(s) {', '.join(unknown)} are not supported by evalpipe_engine.json_schema"
            )
        types = node.get("type", [])
        for name in [types] if isinstance(types, str) else types:
            if name not in TYPE_NAMES:
                raise SchemaDefinitionError(f"{document} {where}: unknown type {name!r}")
        for key in ("properties", "$defs"):
            for name, child in node.get(key, {}).items():
                self._check(child, document, f"{where}/{key}/{name}")
        for key in ("additionalProperties", "items"):
            if key in node:
                self._check(node[key], document, f"{where}/{key}")
        for i, child in enumerate(node.get("anyOf", [])):
            self._check(child, document, f"{where}/anyOf/{i}")
        if "$ref" in node:
            self.resolve(document, node["$ref"])

    def resolve(self, document: str, ref: str) -> tuple[str, Mapping[str, Any]]:
        """(document, schema node) that `ref` points at, relative to `document`."""
        target, _, pointer = ref.partition("#")
        target = target or document
        if target not in self._documents:
            raise SchemaDefinitionError(f"{document}: $ref {ref!r} names no schema file beside it")
        node: Any = self._documents[target]
        for raw in [p for p in pointer.split("/") if p]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaDefinitionError(f"{document}: $ref {ref!r} points at nothing")
            node = node[part]
        if not isinstance(node, dict):
            raise SchemaDefinitionError(f"{document}: $ref {ref!r} does not point at a schema object")
        return target, node

    # -- validation ------------------------------------------------------------------------------------------------

    def validate(self, ref: str, instance: Any) -> list[Violation]:
        """Every violation of the schema at `ref` ("load.json#/$defs/params") by `instance`, in schema order."""
        document, node = self.resolve(ref.partition("#")[0], ref)
        out: list[Violation] = []
        self._validate(document, node, instance, (), "", False, out)
        return out

    def _validate(
        self,
        document: str,
        schema: Any,
        value: Any,
        path: JsonPath,
        where: str,
        named: bool,
        out: list[Violation],
    ) -> None:
        if schema is True:
            return
        if schema is False:
            out.append(Violation(path, where, "false", {}, value, (), named))
            return

        def fail(keyword: str, names: tuple[str, ...] = ()) -> None:
            out.append(Violation(path, where, keyword, schema, value, names, named))

        if "$ref" in schema:
            target, node = self.resolve(document, schema["$ref"])
            self._validate(target, node, value, path, where, named, out)
        types = schema.get("type")
        if types is not None:
            allowed = [types] if isinstance(types, str) else list(types)
            if not any(has_type(value, name) for name in allowed):
                fail("type")
                return  # the other keywords would only repeat that the value is of the wrong kind
        if "enum" in schema and not any(json_equal(value, option) for option in schema["enum"]):
            fail("enum")
        if "const" in schema and not json_equal(value, schema["const"]):
            fail("const")
        if has_type(value, "number"):
            self._check_number(schema, value, fail)
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                fail("minLength")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                fail("maxLength")
        if isinstance(value, list):
            self._check_array(document, schema, value, path, where, out, fail)
        if isinstance(value, dict):
            self._check_object(document, schema, value, path, where, named, out, fail)
        if "anyOf" in schema:
            self._check_any_of(document, schema, value, path, where, named, out, fail)

    @staticmethod
    def _check_number(schema: Mapping[str, Any], value: float, fail: Callable[[str], None]) -> None:
        if "minimum" in schema and value < schema["minimum"]:
            fail("minimum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            fail("exclusiveMinimum")
        if "maximum" in schema and value > schema["maximum"]:
            fail("maximum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            fail("exclusiveMaximum")

    def _check_array(
        self,
        document: str,
        schema: Mapping[str, Any],
        value: list[Any],
        path: JsonPath,
        where: str,
        out: list[Violation],
        fail: Callable[..., None],
    ) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            fail("minItems")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            fail("maxItems")
        if schema.get("uniqueItems") and len({canonical(v) for v in value}) != len(value):
            fail("uniqueItems")
        items = schema.get("items")
        if items is None:
            return
        template = items.get("x-name") if isinstance(items, dict) else None
        for i, item in enumerate(value):
            label = item_name(template, item, None) if template else None
            if label is None:
                self._validate(document, items, item, (*path, i), child_where(where, i, False), False, out)
            else:
                self._validate_named_item(document, items, item, (*path, i), where, i, template, label, out)

    def _validate_named_item(
        self,
        document: str,
        items: Mapping[str, Any],
        item: dict[str, Any],
        path: JsonPath,
        where: str,
        index: int,
        template: str,
        label: str,
        out: list[Violation],
    ) -> None:
        """An item named by its template: violations inside it read "row 7 text"; those of the fields that name it
        read positionally ("rows[0].index"), since a field cannot name the item while it is itself wrong."""
        found: list[Violation] = []
        self._validate(document, items, item, path, label, True, found)
        positional = child_where(where, index, False)
        for v in found:
            inner = v.path[len(path) :]
            if inner and isinstance(inner[0], str) and item_name(template, item, inner[0]) is None:
                rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in inner)
                v = Violation(v.path, positional + rest, v.keyword, v.schema, v.value, v.names, False)
            out.append(v)

    def _check_object(
        self,
        document: str,
        schema: Mapping[str, Any],
        value: dict[str, Any],
        path: JsonPath,
        where: str,
        named: bool,
        out: list[Violation],
        fail: Callable[..., None],
    ) -> None:
        properties: Mapping[str, Any] = schema.get("properties", {})
        missing = tuple(name for name in schema.get("required", []) if name not in value)
        if missing:
            fail("required", missing)
        extra = schema.get("additionalProperties", True)
        unexpected = tuple(sorted(name for name in value if name not in properties))
        if extra is False and unexpected:
            fail("additionalProperties", unexpected)
        for name, child in properties.items():
            if name in value:
                self._validate(document, child, value[name], (*path, name), child_where(where, name, named), False, out)
        if isinstance(extra, dict):
            for name in unexpected:
                self._validate(document, extra, value[name], (*path, name), child_where(where, name, named), False, out)

    def _check_any_of(
        self,
        document: str,
        schema: Mapping[str, Any],
        value: Any,
        path: JsonPath,
        where: str,
        named: bool,
        out: list[Violation],
        fail: Callable[..., None],
    ) -> None:
        attempts: list[list[Violation]] = []
        for branch in schema["anyOf"]:
            found: list[Violation] = []
            self._validate(document, branch, value, path, where, named, found)
            if not found:
                return
            attempts.append(found)
        # Report the branch that got past its type check, if exactly one did: its complaint is the useful one.
        typed = [found for found in attempts if not (len(found) == 1 and found[0].keyword == "type")]
        if len(typed) == 1:
            out.extend(typed[0])
        else:
            fail("anyOf")
