import type { Table } from 'apache-arrow';
import { rowsToTable } from './arrow-table.js';
import { hashFile } from './file-hash.js';
import { readArrow } from './read-arrow.js';
import { readJsonl } from './read-jsonl.js';
import { readParquet } from './read-parquet.js';
import { localFormatOf, type LocalFormat } from './source.js';
import { UsageError } from '../util/errors.js';

export interface LocalRead {
  rows: Record<string, unknown>[];
  columns: string[];
  table: Table;
  /** The whole file's sha256 and size (the file is hashed in full even when only its first rows are read). */
  file: { path: string; sha256: string; bytes: number };
  /** Rows in the whole file when the format says so cheaply (parquet footer, arrow), else undefined. */
  totalRows?: number;
}

/** Read the first `rows` rows of a local .jsonl, .jsonl.gz, .parquet or .arrow file. */
export async function readLocalRows(
  path: string,
  options: {
    rows: number;
    signal?: AbortSignal;
    format?: LocalFormat;
    /** The path to report in provenance and errors (hub files: repo/path). */
    displayPath?: string;
    /** A hash the caller already verified (the hub cache), to avoid hashing twice. */
    knownHash?: { sha256: string; bytes: number };
  },
): Promise<LocalRead> {
  const format = options.format ?? localFormatOf(path);
  if (format === undefined) {
    throw new UsageError(`cannot read ${path}: unknown file type`, { hint: 'use a .jsonl, .jsonl.gz, .parquet or .arrow file' });
  }
  const hashed = options.knownHash ?? (await hashFile(path, options.signal));
  const file = { path: options.displayPath ?? path, ...hashed };
  if (format === 'arrow') {
    const read = await readArrow(path, { limit: options.rows, signal: options.signal });
    return { rows: read.rows, columns: read.columns, table: read.table, file };
  }
  if (format === 'parquet') {
    const read = await readParquet(path, { limit: options.rows, signal: options.signal });
    return { rows: read.rows, columns: read.columns, table: rowsToTable(read.rows, read.columns), file, totalRows: read.totalRows };
  }
  const read = await readJsonl(path, { gzip: format === 'jsonl.gz', limit: options.rows, signal: options.signal });
  return { rows: read.rows, columns: read.columns, table: rowsToTable(read.rows, read.columns), file };
}
