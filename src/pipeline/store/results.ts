import { join } from 'node:path';
import type { TaskSections } from '../../tasks/registry.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { RunStoreError } from '../../util/errors.js';
import { readRunJson } from './read-run-json.js';

export const RESULTS_FILE = 'results.json';
/** The results.json schema this evalpipe writes and the newest it reads. */
export const RESULTS_SCHEMA_VERSION = 1;

const RESULTS_CORRUPT_HINT = 'run the score stage again to rewrite it: evalpipe run <same options> --stages score,report';

/** What every results.json starts with: which run, which config, when it was scored. */
export interface ResultsHeader {
  schema_version: number;
  run_id: string;
  run_dir: string;
  config_hash: string;
  completed_at: string;
  model: string;
  quant: string;
  attn: string;
  /** Each scored task's version (EvalTask.version); absent in results.json written before versions existed. */
  versions?: Record<string, number>;
}

/**
 * results.json: the score stage's output and the only source of figures for `report`, `status` and `leaderboard`.
 * One section per task the run has, named by the task and shaped by it (src/tasks/<task>/results.ts).
 */
export type RunResults = ResultsHeader & Partial<TaskSections>;

/** Write results.json of a run directory whole (atomically). Only the score stage calls this. */
export async function writeResults(directory: string, results: RunResults): Promise<string> {
  const path = join(directory, RESULTS_FILE);
  await writeJsonAtomic(path, results);
  return path;
}

/** Read results.json of a run directory: undefined before the run was scored; refused when corrupt or newer. */
export async function readResults(directory: string): Promise<RunResults | undefined> {
  const path = join(directory, RESULTS_FILE);
  const parsed = (await readRunJson(path, RESULTS_CORRUPT_HINT)) as RunResults | undefined;
  if (parsed === undefined) return undefined;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.schema_version !== 'number') {
    throw new RunStoreError(`${path} is corrupt (no schema_version)`, { hint: RESULTS_CORRUPT_HINT });
  }
  if (parsed.schema_version > RESULTS_SCHEMA_VERSION) {
    throw new RunStoreError(`${path} has results schema version ${parsed.schema_version}, newer than this evalpipe reads (${RESULTS_SCHEMA_VERSION})`, {
      hint: 'upgrade evalpipe to read this run directory',
    });
  }
  return parsed;
}
