import { readFile } from 'node:fs/promises';
import { DataType, tableFromIPC, type Table } from 'apache-arrow';
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
    if (!DataType.isUtf8(field.type) && !DataType.isLargeUtf8(field.type)) continue;
    const vector = table.getChild(field.name);
    if (!vector) continue;
    let rowBase = 0;
    for (const data of vector.data) {
      const offsets = data.valueOffsets as ArrayLike<number | bigint>;
      const values = data.values as Uint8Array;
      for (let i = 0; i < data.length; i += 1) {
        if (!data.getValid(i)) continue;
        const start = Number(offsets[data.offset + i]);
        const end = Number(offsets[data.offset + i + 1]);
        if (decodeUtf8Strict(values.subarray(start, end)) === undefined) {
          throw new DataError(`${path} row ${rowBase + i} column "${field.name}" is not valid UTF-8`, { hint: UTF8_HINT });
        }
      }
      rowBase += data.length;
    }
  }
}
