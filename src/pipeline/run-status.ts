import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { readRunData, type RunData } from './store/run-reader.js';
import { stagesForTasks, type Stage } from './run-config.js';

export const RUN_STATUS_SCHEMA_VERSION = 1;

export interface StageStatus {
  stage: Stage;
  /** Units finished (records on disk, deduplicated by key). */
  done: number;
  /** Units the stage needs; null while unknown (e.g. the data set has not been read yet). */
  total: number | null;
  unit: string;
  complete: boolean;
  /** Extra facts, e.g. execute status counts. */
  detail?: Record<string, number>;
}

export interface RunStatus {
  schema_version: number;
  run_id: string;
  run_dir: string;
  config_hash: string;
  model: string;
  quant: string;
  attn: string;
  created_at: string;
  updated_at: string;
  stages: StageStatus[];
  complete: boolean;
}

/** Each stage's progress in a run directory, read without modifying anything (safe while a run is going). */
export async function readRunStatus(directory: string): Promise<RunStatus> {
  const run = await readRunData(directory);
  const { manifest } = run;
  const { config } = manifest;
  const stages: StageStatus[] = [];
  for (const stage of stagesForTasks(config.tasks)) stages.push(await stageStatus(run, stage));
  return {
    schema_version: RUN_STATUS_SCHEMA_VERSION,
    run_id: manifest.run_id,
    run_dir: run.dir,
    config_hash: manifest.config_hash,
    model: config.model,
    quant: config.quant,
    attn: config.attn,
    created_at: manifest.created_at,
    updated_at: manifest.updated_at,
    stages,
    complete: stages.every((stage) => stage.complete),
  };
}

/** HumanEval problems in the run: --limit capped by the data set's size once it was read, else the --limit asked for. */
function humanEvalProblems(run: RunData): number | null {
  const limit = run.manifest.config.humaneval.limit;
  const recorded = run.manifest.datasets.humaneval;
  if (recorded) return limit === undefined ? recorded.rowCount : Math.min(limit, recorded.rowCount);
  return limit ?? null;
}

async function stageStatus(run: RunData, stage: Stage): Promise<StageStatus> {
  const { config } = run.manifest;
  const count = async (name: string): Promise<number> => (await run.records(name)).size;
  switch (stage) {
    case 'perplexity': {
      const total = run.manifest.datasets.perplexity?.rowCount ?? null;
      const done = await count('perplexity');
      return { stage, done, total, unit: 'rows', complete: total !== null && done >= total };
    }
    case 'generate':
    case 'execute': {
      const problems = humanEvalProblems(run);
      const total = problems === null ? null : problems * config.humaneval.n;
      const records = await run.records(stage);
      const status: StageStatus = { stage, done: records.size, total, unit: 'samples', complete: total !== null && records.size >= total };
      if (stage === 'execute') {
        const counts: Record<string, number> = {};
        for (const record of records.values()) {
          const value = typeof record.status === 'string' ? record.status : 'unknown';
          counts[value] = (counts[value] ?? 0) + 1;
        }
        status.detail = counts;
      }
      return status;
    }
    case 'latency': {
      const total = config.latency.batches.length * config.latency.contexts.length;
      const done = await count('latency');
      return { stage, done, total, unit: 'cells', complete: done >= total };
    }
    case 'score': {
      const done = run.results && run.results.config_hash === run.manifest.config_hash ? 1 : 0;
      return { stage, done, total: 1, unit: 'results.json', complete: done === 1 };
    }
    case 'report': {
      const done = (await exists(join(run.dir, 'report.md'))) && (await exists(join(run.dir, 'report.html'))) ? 1 : 0;
      return { stage, done, total: 1, unit: 'report', complete: done === 1 };
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The table `evalpipe status` prints. */
export function formatRunStatus(status: RunStatus): string {
  const header = [
    `run     ${status.run_id}`,
    `dir     ${status.run_dir}`,
    `model   ${status.model} (${status.quant}, ${status.attn})`,
    `updated ${status.updated_at}`,
    '',
  ];
  const rows = status.stages.map((stage) => {
    const total = stage.total === null ? '?' : String(stage.total);
    const percent = stage.total ? ` ${Math.floor((100 * Math.min(stage.done, stage.total)) / stage.total)}%` : '';
    const state = stage.complete ? 'complete' : stage.done > 0 ? `in progress${percent}` : 'not started';
    const detail = stage.detail && Object.keys(stage.detail).length > 0
      ? `  (${Object.entries(stage.detail).sort().map(([key, value]) => `${key} ${value}`).join(', ')})`
      : '';
    return [stage.stage, `${stage.done}/${total} ${stage.unit}`, `${state}${detail}`];
  });
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length), column === 0 ? 5 : 4));
  const lines = [['stage', 'done', 'state'], ...rows].map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`);
  const footer = status.complete ? 'run complete' : 'run incomplete: the same `evalpipe run` command resumes it';
  return [...header, ...lines, '', footer].join('\n');
}
