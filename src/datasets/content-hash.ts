import { createHash } from 'node:crypto';
import { normalizeCell } from './cell-value.js';

/**
 * sha256 over the rows as read: one line per row, a JSON array of its cells in column order,
 * preceded by one line with the JSON array of column names. The same rows hash the same whether they came
 * from JSONL, parquet or arrow, so a manifest can tell "same data" from "same file".
 */
export function contentSha256OfRows(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const hash = createHash('sha256');
  hash.update(`${JSON.stringify(columns)}\n`);
  for (const row of rows) {
    hash.update(`${JSON.stringify(columns.map((column) => normalizeCell(row[column])))}\n`);
  }
  return hash.digest('hex');
}
