import type { StageProgress } from './stage.js';
import { stagesForTasks } from './stages.js';
import { readRunData } from './store/run-reader.js';

export const RUN_STATUS_SCHEMA_VERSION = 1;

/** One stage's row of `evalpipe status`: its progress (records on disk, deduplicated by key) and whether it is done. */
export interface StageStatus extends StageProgress {
  stage: string;
  complete: boolean;
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
  for (const stage of stagesForTasks(config.tasks)) {
    const progress = await stage.progress(run);
    stages.push({ stage: stage.name, ...progress, complete: progress.total !== null && progress.done >= progress.total });
  }
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
    const detail =
      stage.detail && Object.keys(stage.detail).length > 0
        ? `  (${Object.entries(stage.detail)
            .sort()
            .map(([key, value]) => `${key} ${value}`)
            .join(', ')})`
        : '';
    return [stage.stage, `${stage.done}/${total} ${stage.unit}`, `${state}${detail}`];
  });
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length), column === 0 ? 5 : 4));
  const lines = [['stage', 'done', 'state'], ...rows].map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`);
  const footer = status.complete ? 'run complete' : 'run incomplete: the same `evalpipe run` command resumes it';
  return [...header, ...lines, '', footer].join('\n');
}
