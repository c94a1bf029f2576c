import type { Options } from 'yargs';
import type { DeviceChoice } from '../backends/engine/protocol.js';
import type { RunContext, Stage } from '../pipeline/stage.js';
import type { EstimateJson } from '../pipeline/statistics.js';
import type { Flags } from '../util/option-values.js';

/** What a task's config may depend on besides its own flags. */
export interface CommonRunFlags {
  device: DeviceChoice;
}

/**
 * One evaluation task: a folder under src/tasks/<name>/ that owns its data set, prompts, stop list, program
 * assembly, records and metric, and one line in the registry (src/tasks/registry.ts). The pipeline knows tasks only
 * through this interface: `run` builds `config[name]` with `configFrom`, runs `stages`, and `score` writes the
 * task's section of results.json from the stages' records. docs/adding-a-task.md walks through adding one.
 */
export interface EvalTask<Name extends string, Config, Section> {
  readonly name: Name;
  /**
   * The version of what the task computes (its data handling, prompts, metric): results.json `versions` and an
   * lm-eval export's `versions` carry it. Bump it when the same run config would give different figures.
   */
  readonly version: number;
  /** One line for `--help` and the docs. */
  readonly description: string;
  /** The task's own flags on `run` and `sweep` (yargs option definitions by flag name). */
  readonly options: Readonly<Record<string, Options>>;
  /** The task's part of the run config (hashed into the run's identity) from the flags; bad values throw UsageError. */
  configFrom(flags: Flags, common: CommonRunFlags): Config;
  /** Its work stages, in the order they run; each writes records/<stage>.jsonl. */
  readonly stages: readonly Stage[];
  /** The task's section of results.json from its records; throws `stage_incomplete` when work is missing. */
  score(context: RunContext): Promise<Section>;
  /**
   * The task's headline figures from its section, by name, each with its standard error: what the report's task
   * table and the leaderboard entry show for a task they have no dedicated table for. Empty: nothing to rank by.
   */
  headline(section: Section): Record<string, EstimateJson>;
}

/** Declare a task (keeps its name a literal type, so the registry can type config and results by name). */
export function defineTask<Name extends string, Config, Section>(task: EvalTask<Name, Config, Section>): EvalTask<Name, Config, Section> {
  return task;
}
