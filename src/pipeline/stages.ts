import { TASK_REGISTRY, type TaskName } from '../tasks/registry.js';
import { reportStage } from './report-stage.js';
import { scoreStage } from './score-stage.js';
import type { Stage } from './stage.js';

/** Every stage in pipeline order: each registered task's work stages, then score and report. */
export const PIPELINE_STAGES: readonly Stage[] = [...TASK_REGISTRY.flatMap((task) => task.stages), scoreStage, reportStage];

/** The names --stages accepts, in pipeline order. */
export const STAGE_NAMES: readonly string[] = PIPELINE_STAGES.map((stage) => stage.name);

/** The stages a run of these tasks has, in pipeline order (score and report always). */
export function stagesForTasks(tasks: readonly TaskName[]): Stage[] {
  const own = new Set(TASK_REGISTRY.filter((task) => tasks.includes(task.name)).flatMap((task) => task.stages));
  return PIPELINE_STAGES.filter((stage) => own.has(stage) || stage === scoreStage || stage === reportStage);
}

/** The stages that read every unit's records (a shard runs none of them; `merge` runs them on the whole). */
export const SCORING_STAGES: readonly string[] = [scoreStage.name, reportStage.name];
