import { RunStoreError } from '../../util/errors.js';
import { RecordChecker } from './record-checksum.js';
import { recordMisfit, type RecordKind, type StoredRecord } from './record-kind.js';

/** The record schema this evalpipe writes and the newest it reads. */
export const RECORD_SCHEMA_VERSION = 1;

export interface ParsedRecordLines<R extends object> {
  /** By key; the first record of a key wins (a re-run unit never replaces a finished one). */
  records: Map<string, StoredRecord<R>>;
  /** Bytes of the complete, valid records from the start of the file. */
  completeBytes: number;
  /** Bytes after them that an interrupted write left (an unterminated or unparsable last line); 0 when none. */
  tornBytes: number;
}

/**
 * The one parser of record files (JSON lines), for the writer (which truncates a torn tail away) and for readers
 * (which leave the file alone). A line that is not a complete record is a torn tail when nothing but blank lines
 * follows it, and an error naming the file and line otherwise; every record is checked against its checksum and
 * against its stage's record kind.
 */
export function parseRecordLines<R extends object>(text: string, path: string, kind?: RecordKind<R>): ParsedRecordLines<R> {
  const records = new Map<string, StoredRecord<R>>();
  const checker = new RecordChecker(path);
  const lines = text.split('\n');
  let completeBytes = 0;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    const terminated = i < lines.length - 1;
    if (!terminated && line === '') break;
    const record = terminated ? parseRecord(line) : undefined;
    if (!record) {
      if (lines.slice(i + 1).some((rest) => rest.trim() !== '')) {
        throw new RunStoreError(`${path} line ${i + 1} is corrupt (not a complete record) and is not the last line`, {
          hint: 'the run directory was edited or damaged; start over with --fresh or restore the file',
        });
      }
      return { records, completeBytes, tornBytes: Buffer.byteLength(text, 'utf8') - completeBytes };
    }
    if (record.v > RECORD_SCHEMA_VERSION) {
      throw new RunStoreError(`${path} line ${i + 1} has record schema ${record.v}, newer than this evalpipe (${RECORD_SCHEMA_VERSION})`, {
        hint: 'upgrade evalpipe to read this run directory',
      });
    }
    checker.check(record, i + 1);
    const misfit = recordMisfit(record, kind as RecordKind<object> | undefined);
    if (misfit) {
      throw new RunStoreError(`${path} line ${i + 1} is not a valid ${kind!.stage} record: ${misfit}`, {
        hint: 'the run directory was written by another tool or edited; restore the file, or start over with --fresh',
      });
    }
    if (!records.has(record.key)) records.set(record.key, record as StoredRecord<R>);
    completeBytes += Buffer.byteLength(line, 'utf8') + 1;
  }
  return { records, completeBytes, tornBytes: 0 };
}

function parseRecord(line: string): StoredRecord | undefined {
  try {
    const value = JSON.parse(line) as Partial<StoredRecord> | null;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (typeof value.key !== 'string' || typeof value.v !== 'number') return undefined;
    return value as StoredRecord;
  } catch {
    return undefined;
  }
}
