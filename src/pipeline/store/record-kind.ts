/** The JSON type a record field must have; `|null` admits null as well. */
export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'string|null' | 'number|null';

/**
 * What one stage's records hold, declared by the task that writes them (src/tasks/<task>/records.ts). The run
 * store types the records of that stage as `R` and checks every record it reads against `fields`, so a record
 * that lacks a field the scorer reads is refused with its file and line instead of being scored as zero.
 */
export interface RecordKind<R extends object> {
  /** The stage that writes these records: the file is records/<stage>.jsonl. */
  stage: string;
  /** The fields every record must carry, with their JSON types. Other fields are kept unchecked. */
  fields: Partial<Record<keyof R & string, FieldType>>;
}

/** A record as it sits on disk: the stage's fields plus the store's own (schema version, key, checksum). */
export type StoredRecord<R extends object = Record<string, unknown>> = R & { v: number; key: string; sum?: string };

/** Declare a record kind (the type parameter carries the record's TypeScript type). */
export function recordKind<R extends object>(stage: string, fields: RecordKind<R>['fields']): RecordKind<R> {
  return { stage, fields };
}

/** Why a record does not fit its kind ("field \"passed\" is missing"), or undefined when it fits. */
export function recordMisfit(record: Record<string, unknown>, kind: RecordKind<object> | undefined): string | undefined {
  if (!kind) return undefined;
  for (const [field, type] of Object.entries(kind.fields) as [string, FieldType][]) {
    if (!(field in record)) return `field "${field}" is missing`;
    if (!fits(record[field], type)) return `field "${field}" should be ${type.replace('|', ' or ')}, got ${JSON.stringify(record[field])}`;
  }
  return undefined;
}

function fits(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'integer':
      return Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'string|null':
      return value === null || typeof value === 'string';
    case 'number|null':
      return value === null || typeof value === 'number';
  }
}
