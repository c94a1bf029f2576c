import { RecordChecker } from './record-checksum.js';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RunStoreError } from '../../util/errors.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_FILE, RESULTS_FILE, readManifest } from './run-directory.js';
import { RECORD_SCHEMA_VERSION, type StageRecord } from './stage-records.js';
import { readRunJson } from './read-run-json.js';

const RESULTS_CORRUPT_HINT = 'run the score stage again to rewrite it: evalpipe run <same options> --stages score,report';

/** The newest results.json schema this reader understands (run-pipeline.ts RESULTS_SCHEMA_VERSION). */
const RESULTS_SCHEMA_READ = 1;

/** What `results.json` may hold. Every section is optional: a reader must cope with runs of any task mix. */
export interface ResultsFile {
  schema_version: number;
  run_id: string;
  config_hash: string;
  completed_at: string;
  model: string;
  quant: string;
  attn: string;
  perplexity?: { rows: number; scored_tokens: number; perplexity: number; bits_per_byte: number; dataset: string; nll_per_token?: number };
  humaneval?: {
    pass_at_k?: Record<string, number>;
    n_problems?: number;
    n_samples_per_problem?: number;
    status_counts?: Record<string, number>;
    per_problem?: unknown[];
  };
  latency?: { cells?: unknown[]; header?: Record<string, unknown> };
  [section: string]: unknown;
}

/** One run directory as readers (status, report, leaderboard) see it: nothing here writes or truncates. */
export interface RunData {
  dir: string;
  manifest: Manifest;
  results: ResultsFile | undefined;
  /** Records of one stage by key (first record of a key wins, as the writer does). Empty when the file is absent. */
  records(stage: string): Promise<Map<string, StageRecord>>;
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
  const results = await readResults(join(dir, RESULTS_FILE));
  const cache = new Map<string, Map<string, StageRecord>>();
  return {
    dir,
    manifest,
    results,
    async records(stage: string) {
      let records = cache.get(stage);
      if (!records) {
        records = await readStageRecordsReadOnly(join(dir, 'records', `${stage}.jsonl`));
        cache.set(stage, records);
      }
      return records;
    },
  };
}

async function readResults(path: string): Promise<ResultsFile | undefined> {
  const parsed = (await readRunJson(path, RESULTS_CORRUPT_HINT)) as ResultsFile | undefined;
  if (parsed === undefined) return undefined;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.schema_version !== 'number') {
    throw new RunStoreError(`${path} is corrupt (no schema_version)`, {
      hint: RESULTS_CORRUPT_HINT,
    });
  }
  if (parsed.schema_version > RESULTS_SCHEMA_READ) {
    throw new RunStoreError(`${path} has results schema version ${parsed.schema_version}, newer than this evalpipe reads (${RESULTS_SCHEMA_READ})`, {
      hint: 'upgrade evalpipe to read this run directory',
    });
  }
  return parsed;
}

/**
 * Read a stage's records without touching the file: a torn last line (a run that is still writing, or was killed)
 * is ignored, a corrupt line before the last is an error naming the file and line.
 */
export async function readStageRecordsReadOnly(path: string): Promise<Map<string, StageRecord>> {
  const records = new Map<string, StageRecord>();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return records;
    throw new RunStoreError(`cannot read ${path}`, { cause: error });
  }
  const lines = text.split('\n');
  const checker = new RecordChecker(path);
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    const isLast = i === lines.length - 1;
    if (isLast) break; // either '' after the final newline, or a torn record without its newline
    const record = parseRecord(line);
    if (!record) {
      throw new RunStoreError(`${path} line ${i + 1} is corrupt (not a complete record)`, {
        hint: 'the run directory was edited or damaged; resume it with `evalpipe run` (which repairs a torn tail) or restore the file',
      });
    }
    if (record.v > RECORD_SCHEMA_VERSION) {
      throw new RunStoreError(`${path} line ${i + 1} has record schema ${record.v}, newer than this evalpipe (${RECORD_SCHEMA_VERSION})`, {
        hint: 'upgrade evalpipe to read this run directory',
      });
    }
    checker.check(record, i + 1);
    if (!records.has(record.key)) records.set(record.key, record);
  }
  return records;
}

function parseRecord(line: string): StageRecord | undefined {
  try {
    const value = JSON.parse(line) as Partial<StageRecord> | null;
    if (typeof value !== 'object' || value === null || typeof value.key !== 'string' || typeof value.v !== 'number') return undefined;
    return value as StageRecord;
  } catch {
    return undefined;
  }
}
