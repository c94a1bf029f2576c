import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { packageRoot } from '../../util/package-root.js';
import { ENGINE_OPS, type EngineOp } from './protocol.js';
import { describeFirst, type SchemaViolation } from './schema-messages.js';

/**
 * The engine ops' JSON Schemas, schemas/engine/<op>.json (draft 2020-12), the same files the Python engine checks
 * requests against (cuda/evalpipe_engine/request_schemas.py). Each holds `$defs/params`, `$defs/result` and, for
 * ops that stream, `$defs/progress` / `$defs/partial`. Compiled once, on first use.
 */
export const ENGINE_SCHEMA_DIR = join('schemas', 'engine');
const SCHEMA_BASE = 'https://evalpipe.dev/schemas/engine/';

type SchemaNode = Record<string, unknown>;
export type SchemaPart = 'params' | 'result' | 'progress' | 'partial';

interface Compiled {
  ajv: Ajv2020;
  documents: Map<string, SchemaNode>;
  validators: Map<string, ValidateFunction>;
}

let compiled: Compiled | undefined;

function schemas(): Compiled {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  ajv.addKeyword('x-name'); // our annotation: how messages name an array item ("row {index}")
  const documents = new Map<string, SchemaNode>();
  for (const name of [...ENGINE_OPS, 'protocol']) {
    const document = JSON.parse(readFileSync(join(packageRoot(), ENGINE_SCHEMA_DIR, `${name}.json`), 'utf8')) as SchemaNode;
    documents.set(name, document);
    ajv.addSchema(document);
  }
  compiled = { ajv, documents, validators: new Map() };
  return compiled;
}

/** The schema node at `<file>#/$defs/<part>`, or undefined when the op has no such part. */
export function schemaPart(op: string, part: string): SchemaNode | undefined {
  const defs = schemas().documents.get(op)?.$defs as Record<string, SchemaNode> | undefined;
  return defs?.[part];
}

function validator(op: string, part: string): ValidateFunction | undefined {
  const { ajv, validators } = schemas();
  const key = `${op}#${part}`;
  if (!validators.has(key)) {
    if (!schemaPart(op, part)) return undefined;
    const found = ajv.getSchema(`${SCHEMA_BASE}${op}.json#/$defs/${part}`);
    if (!found) return undefined;
    validators.set(key, found);
  }
  return validators.get(key);
}

/** A `$ref` as the op schemas write them ("#/$defs/x" in the same file, "load.json#/$defs/result" beside it). */
function resolver(op: string): (ref: string) => SchemaNode | undefined {
  return (ref) => {
    const [file, pointer = ''] = ref.split('#');
    const document = schemas().documents.get(file ? file.replace(/\.json$/, '') : op);
    let node: unknown = document;
    for (const part of pointer.split('/').filter(Boolean)) node = (node as SchemaNode | undefined)?.[part];
    return node as SchemaNode | undefined;
  };
}

export function isEngineOp(op: string): op is EngineOp {
  return (ENGINE_OPS as readonly string[]).includes(op);
}

/**
 * The first way `value` breaks `<op>.json#/$defs/<part>`, worded for a person, or undefined when it conforms (or
 * the op has no such part: an event the schema does not describe is not checked).
 */
export function schemaViolation(op: EngineOp, part: SchemaPart, value: unknown): SchemaViolation | undefined {
  const validate = validator(op, part);
  if (!validate || validate(value)) return undefined;
  return describeFirst(validate.errors ?? [], value, schemaPart(op, part)!, resolver(op));
}

/** Every ajv error (pointer and keyword) of `value` against `<op>.json#/$defs/<part>`: for the shared fixtures. */
export function schemaErrors(op: EngineOp, part: SchemaPart, value: unknown): { pointer: string; keyword: string }[] {
  const validate = validator(op, part);
  if (!validate || validate(value)) return [];
  return (validate.errors ?? []).map((error) => ({ pointer: error.instancePath, keyword: error.keyword }));
}
