import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RunStoreError } from '../../util/errors.js';
import type { Manifest } from './manifest.js';
import type { RecordKind, StoredRecord } from './record-kind.js';
import { parseRecordLines } from './record-lines.js';
import { readResults, type RunResults } from './results.js';
import { MANIFEST_FILE, readManifest } from './run-directory.js';

/**
 * One run directory opened read-only (status, report, leaderboard, publish): nothing here writes or truncates,
 * so it is safe while a run is going. Figures come from `results` (the score stage's output); the records are
 * for progress counts only.
 */
export interface RunData {
  dir: string;
  manifest: Manifest;
  results: RunResults | undefined;
  /** A stage's records by key (first record of a key wins, as the writer does); empty when the file is absent. */
  records<R extends object>(kind: RecordKind<R>): Promise<ReadonlyMap<string, StoredRecord<R>>>;
  /**
   * Check every record file's integrity (checksums, whole lines) without reading figures from it: `report` and
   * `leaderboard build` take their figures from results.json, and refuse a run whose records were edited since.
   */
  verifyRecords(): Promise<void>;
}

/** Open a run directory for reading. Refuses a directory without manifest.json, with a clear message. */
export async function readRunData(directory: string): Promise<RunData> {
  const dir = resolve(directory);
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new RunStoreError(`${dir} is not a directory`, { hint: 'pass a run directory (results/<run-id>) made by `evalpipe run`' });
  const manifest = await readManifest(dir);
  if (!manifest) {
    throw new RunStoreError(`${dir} is not an evalpipe run directory (no ${MANIFEST_FILE})`, {
      hint: 'pass a run directory (results/<run-id>) made by `evalpipe run`',
    });
  }
  const results = await readResults(dir);
  const cache = new Map<string, ReadonlyMap<string, StoredRecord<object>>>();
  return {
    dir,
    manifest,
    results,
    async records<R extends object>(kind: RecordKind<R>) {
      let records = cache.get(kind.stage);
      if (!records) {
        records = await readStageRecordsReadOnly(join(dir, 'records', `${kind.stage}.jsonl`), kind);
        cache.set(kind.stage, records);
      }
      return records as ReadonlyMap<string, StoredRecord<R>>;
    },
    async verifyRecords() {
      let names: string[];
      try {
        names = (await readdir(join(dir, 'records'))).filter((name) => name.endsWith('.jsonl')).sort();
      } catch {
        return;
      }
      for (const name of names) await readStageRecordsReadOnly(join(dir, 'records', name));
    },
  };
}

/**
 * Read a stage's records without touching the file: a torn last line (a run that is still writing, or was killed)
 * is ignored, a corrupt line before the last is an error naming the file and line.
 */
export async function readStageRecordsReadOnly<R extends object = Record<string, unknown>>(
  path: string,
  kind?: RecordKind<R>,
): Promise<Map<string, StoredRecord<R>>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new RunStoreError(`cannot read ${path}`, { cause: error, hint: 'check the file permissions of the run directory' });
  }
  return parseRecordLines(text, path, kind).records;
}
