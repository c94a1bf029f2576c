import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from '../util/errors.js';
import { decodeUtf8Strict, UTF8_HINT } from './utf8.js';

/** Marks a string cell whose bytes were not valid UTF-8, so the row and column can be named in the error. */
class InvalidUtf8 {
  constructor(readonly bytes: Uint8Array) {}
}

export interface ParquetRead {
  rows: Record<string, unknown>[];
  columns: string[];
  /** Rows in the whole file (from the footer), so a caller knows whether the next file is needed. */
  totalRows: number;
}

/**
 * Read the first `limit` rows of a parquet file. Only the footer and the row groups that hold those rows are
 * read from disk (hyparquet reads by byte range). String cells are decoded as strict UTF-8.
 */
export async function readParquet(path: string, options: { limit: number; signal?: AbortSignal }): Promise<ParquetRead> {
  options.signal?.throwIfAborted();
  let rows: Record<string, unknown>[];
  let columns: string[];
  let totalRows: number;
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    columns = parquetSchema(metadata).children.map((child) => child.element.name);
    totalRows = Number(metadata.num_rows);
    rows =
      options.limit <= 0 || totalRows === 0
        ? []
        : await parquetReadObjects({
            file,
            metadata,
            rowEnd: Math.min(options.limit, totalRows),
            compressors,
            parsers: {
              stringFromBytes: (bytes: Uint8Array) => {
                if (!bytes) return bytes;
                const text = decodeUtf8Strict(bytes);
                return text === undefined ? new InvalidUtf8(bytes) : text;
              },
            },
          });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new DataError(`${path} is not a readable parquet file (${(error as Error).message})`, {
      hint: 'check the file (a torn download?) or convert it again; .jsonl, .jsonl.gz and .arrow are also accepted',
      cause: error,
    });
  }
  rows.forEach((row, index) => {
    for (const [column, value] of Object.entries(row)) {
      if (value instanceof InvalidUtf8) {
        throw new DataError(`${path} row ${index} column "${column}" is not valid UTF-8`, { hint: UTF8_HINT });
      }
    }
  });
  return { rows, columns, totalRows };
}
