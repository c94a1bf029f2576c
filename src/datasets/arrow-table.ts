import { Bool, Float64, Table, Utf8, vectorFromArray, type DataType, type Vector } from 'apache-arrow';
import { normalizeCell } from './cell-value.js';

/**
 * Build an arrow table from plain rows with one typed column per name: all-string columns become Utf8,
 * all-number Float64, all-boolean Bool (nulls allowed in each); anything mixed or nested is stored as
 * its JSON text in a Utf8 column, so no value is silently dropped.
 */
export function rowsToTable(rows: readonly Record<string, unknown>[], columns: readonly string[]): Table {
  const vectors: Record<string, Vector> = {};
  for (const column of columns) {
    const values = rows.map((row) => normalizeCell(row[column]));
    const kind = columnKind(values);
    let type: DataType;
    let data: unknown[];
    if (kind === 'number') {
      type = new Float64();
      data = values;
    } else if (kind === 'boolean') {
      type = new Bool();
      data = values;
    } else {
      type = new Utf8();
      data = values.map((value) => (value === null || typeof value === 'string' ? value : JSON.stringify(value)));
    }
    vectors[column] = vectorFromArray(data, type);
  }
  return new Table(vectors);
}

function columnKind(values: readonly unknown[]): 'string' | 'number' | 'boolean' | 'json' {
  let kind: 'string' | 'number' | 'boolean' | undefined;
  for (const value of values) {
    if (value === null) continue;
    const current = typeof value;
    if (current !== 'string' && current !== 'number' && current !== 'boolean') return 'json';
    if (kind === undefined) kind = current;
    else if (kind !== current) return 'json';
  }
  return kind ?? 'string';
}
