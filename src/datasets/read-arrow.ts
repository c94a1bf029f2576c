import { readFile } from 'node:fs/promises';
import { DataType, tableFromIPC, type Data, type Table } from 'apache-arrow';
import { DataError } from '../util/errors.js';
import { decodeUtf8Strict, UTF8_HINT } from './utf8.js';

export interface ArrowRead {
  table: Table;
  rows: Record<string, unknown>[];
  columns: string[];
}

/**
 * Read the first `limit` rows of an Arrow IPC file (file or stream format). Utf8 columns are checked as strict
 * UTF-8 on their raw bytes, since arrow's own decoder would replace bad bytes silently.
 */
export async function readArrow(path: string, options: { limit: number; signal?: AbortSignal }): Promise<ArrowRead> {
  let table: Table;
  try {
    const bytes = await readFile(path, { signal: options.signal });
    table = tableFromIPC(bytes);
    if (table.schema.fields.length === 0 && bytes.length > 0) throw new Error('no schema found (not Arrow IPC data)');
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new DataError(`${path} is not a readable Arrow IPC file (${(error as Error).message})`, {
      hint: 'write it with an Arrow IPC writer (file or stream format), or give .jsonl/.jsonl.gz/.parquet instead',
      cause: error,
    });
  }
  const sliced = table.numRows > options.limit ? table.slice(0, options.limit) : table;
  const columns = sliced.schema.fields.map((field) => field.name);
  checkUtf8Columns(path, sliced);
  const rows = sliced.toArray().map((row) => ({ ...(row as { toJSON(): Record<string, unknown> }).toJSON() }));
  return { table: sliced, rows, columns };
}

function checkUtf8Columns(path: string, table: Table): void {
  for (const field of table.schema.fields) {
    const vector = table.getChild(field.name);
    if (!vector) continue;
    let rowBase = 0;
    for (const data of vector.data) {
      const bad = firstInvalidRow(data);
      if (bad !== undefined) {
        throw new DataError(`${path} row ${rowBase + bad} column "${field.name}" is not valid UTF-8`, { hint: UTF8_HINT });
      }
      rowBase += data.length;
    }
  }
}

/** Index (within this chunk) of the first row whose string bytes are not UTF-8; plain and dictionary-encoded strings. */
function firstInvalidRow(data: Data): number | undefined {
  if (DataType.isDictionary(data.type)) {
    const dictionary = data.dictionary;
    if (!dictionary) return undefined;
    const badEntries = new Set<number>();
    let entryBase = 0;
    for (const chunk of dictionary.data) {
      for (let i = 0; i < chunk.length; i += 1) if (!validString(chunk, i)) badEntries.add(entryBase + i);
      entryBase += chunk.length;
    }
    if (badEntries.size === 0) return undefined;
    const keys = data.values as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i += 1) {
      if (data.getValid(i) && badEntries.has(Number(keys[data.offset + i]))) return i;
    }
    return undefined;
  }
  if (!DataType.isUtf8(data.type) && !DataType.isLargeUtf8(data.type)) return undefined;
  for (let i = 0; i < data.length; i += 1) if (!validString(data, i)) return i;
  return undefined;
}

function validString(data: Data, index: number): boolean {
  if (!DataType.isUtf8(data.type) && !DataType.isLargeUtf8(data.type)) return true;
  if (!data.getValid(index)) return true;
  const offsets = data.valueOffsets as ArrayLike<number | bigint>;
  const start = Number(offsets[data.offset + index]);
  const end = Number(offsets[data.offset + index + 1]);
  return decodeUtf8Strict((data.values as Uint8Array).subarray(start, end)) !== undefined;
}
