import { EvalpipeError } from '../util/errors.js';
import type { HubOptions } from '../datasets/hub-options.js';
import type { ModelBackend } from '../backends/model-backend.js';
import type { RunConfig, RunSettings } from './run-config.js';
import type { RunDirectory } from './store/run-directory.js';
import type { RunData } from './store/run-reader.js';

/** What every stage of one run sees: the run store, the config, and the model backend on demand. */
export interface RunContext {
  readonly store: RunDirectory;
  readonly config: RunConfig;
  readonly settings: RunSettings;
  readonly hub: HubOptions;
  readonly signal: AbortSignal | undefined;
  /** The model backend, started and loaded on first use; only stages with `needsEngine` call it. */
  engine(): Promise<ModelBackend>;
  /** A value computed once per run and shared (a task's loaded data set, read by its stages and its score). */
  once<T>(key: string, make: () => Promise<T>): Promise<T>;
}

/** A stage's progress as `evalpipe status` shows it; `total` is null while unknown (data set not read yet). */
export interface StageProgress {
  done: number;
  total: number | null;
  unit: string;
  /** Extra facts, e.g. execution status counts. */
  detail?: Record<string, number>;
}

/**
 * One stage of the pipeline. A task contributes its work stages (src/tasks/<task>/); `score` and `report` close
 * every run. `runEvaluation` is a loop over stages: engine stages first (one engine for all of them), then the
 * others, each run only when `pending` finds work, so the same command resumes any run.
 */
export interface Stage {
  /** The `--stages` name; work stages also name their record file (records/<name>.jsonl). */
  readonly name: string;
  /** Whether `run` needs the model backend (the engine is started only for stages that need it). */
  readonly needsEngine: boolean;
  /** Units of work not yet recorded; 0 when there is nothing to do. May read the task's data set. */
  pending(context: RunContext): Promise<number>;
  /** Do the pending work, appending one record per finished unit. */
  run(context: RunContext): Promise<void>;
  /** Progress read from a run directory without changing it (safe while a run is going). */
  progress(run: RunData): Promise<StageProgress>;
}

/** The error a score gives when a stage's work is missing: what, how much is done, and which stages to run. */
export function stageIncomplete(what: string, done: number, total: number, stages: string): EvalpipeError {
  return new EvalpipeError('stage_incomplete', `${what} is incomplete: ${done} of ${total} done`, {
    hint: `run the missing stages first (--stages ${stages}) or run the whole command again`,
  });
}
