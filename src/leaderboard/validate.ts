import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { DataError } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import type { LeaderboardEntry } from './entry.js';

export const ENTRY_SCHEMA_FILE = join('schemas', 'leaderboard-entry.schema.json');

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const schema = JSON.parse(readFileSync(join(packageRoot(), ENTRY_SCHEMA_FILE), 'utf8')) as object;
    compiled = new Ajv({ allErrors: true, strict: true }).compile(schema);
  }
  return compiled;
}

/** "entries[2]/metrics/perplexity/se must be number" for the first (few) schema errors. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined, prefix: string): string {
  if (!errors || errors.length === 0) return `${prefix} does not match the schema`;
  // A failed `oneOf: [null, {...}]` also reports "must be null" and "must match exactly one schema": drop that
  // noise, then show missing fields first and the deepest paths next.
  const useful = errors.filter((error) => error.keyword !== 'oneOf' && !/\/oneOf\/0\//.test(error.schemaPath));
  const specific = (useful.length > 0 ? useful : [...errors]).sort(
    (a, b) => Number(b.keyword === 'required') - Number(a.keyword === 'required') || b.instancePath.length - a.instancePath.length,
  );
  const unique = [
    ...new Set(
      specific.map((error) => {
        const where = `${prefix}${error.instancePath}` || prefix;
        if (error.keyword === 'required') return `${where} is missing the field ${String((error.params as { missingProperty?: string }).missingProperty)}`;
        const extra = error.keyword === 'additionalProperties' ? ` (${String((error.params as { additionalProperty?: string }).additionalProperty)})` : '';
        return `${where} ${error.message ?? 'is invalid'}${extra}`;
      }),
    ),
  ];
  return unique.slice(0, 3).join('; ');
}

/** Throw a DataError naming the file and the field when an entry does not match schemas/leaderboard-entry.schema.json. */
export function assertValidEntry(entry: unknown, where: { file: string; path: string }): asserts entry is LeaderboardEntry {
  const validate = validator();
  if (validate(entry)) return;
  throw new DataError(`${where.file}: ${describeSchemaErrors(validate.errors, where.path)} (schema ${ENTRY_SCHEMA_FILE})`, {
    hint: 'fix or remove that entry, or rebuild the file with `evalpipe leaderboard build <run dirs> -o <file>`',
  });
}
