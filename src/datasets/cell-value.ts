/**
 * Cell values from JSONL, parquet and arrow differ in shape (bigint, Date, Uint8Array, nested objects).
 * normalizeCell maps each to a plain JSON value so hashes and arrow columns are the same whatever the file format.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export function normalizeCell(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(normalizeCell);
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>, normalizeCell);
  const out: { [key: string]: JsonValue } = {};
  for (const [key, inner] of Object.entries(value)) out[key] = normalizeCell(inner);
  return out;
}
