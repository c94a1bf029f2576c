import { humanevalTask } from './humaneval/task.js';
import { humanevalPlusTask } from './humaneval-plus/task.js';
import { latencyTask } from './latency/task.js';
import { multiplEJsTask } from './multipl-e-js/task.js';
import { multiplETsTask } from './multipl-e-ts/task.js';
import { mbppPlusTask } from './mbpp-plus/task.js';
import { perplexityTask } from './perplexity/task.js';

/**
 * The only list of tasks. A task is a folder under src/tasks/ plus one line here; the CLI's --tasks, the run
 * config, the pipeline's stages and the sections of results.json all come from this list (docs/adding-a-task.md).
 * Order matters: it is the order of the stages (and of --stages' names).
 */
export const TASK_REGISTRY = [perplexityTask, humanevalTask, humanevalPlusTask, mbppPlusTask, latencyTask, multiplEJsTask, multiplETsTask] as const;

export type RegisteredTask = (typeof TASK_REGISTRY)[number];
export type TaskName = RegisteredTask['name'];
export const TASK_NAMES: readonly TaskName[] = TASK_REGISTRY.map((task) => task.name);

/** Each task's part of the run config, under its name (config.perplexity, config.humaneval, ...). */
export type TaskConfigs = { [T in RegisteredTask as T['name']]: ReturnType<T['configFrom']> };

/** Each task's section of results.json, under its name. */
export type TaskSections = { [T in RegisteredTask as T['name']]: Awaited<ReturnType<T['score']>> };

export function taskNamed(name: TaskName): RegisteredTask {
  return TASK_REGISTRY.find((task) => task.name === name)!;
}
