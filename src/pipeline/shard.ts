import { createHash } from 'node:crypto';
import { UsageError } from '../util/errors.js';

/**
 * `--shard i/N`: this machine takes the i-th of N fixed shares of a run's work units (1-based). A unit's share is
 * a function of its task and its own key alone (a perplexity row's index, a problem's id, the latency matrix), so
 * it does not depend on order, batch size, resumes or which other units exist.
 */
export interface Shard {
  index: number;
  count: number;
}

/** How a unit's shard is computed, recorded in the manifest so `merge` refuses shards cut another way. */
export const SHARD_SCHEME = 'sha256(task "/" unit) mod N';

/** The most shards one run may be cut into. */
export const MAX_SHARDS = 4096;

/** The tasks whose units can be shared out (every task of the registry today; a new task joins once its stages take their share). */
export const SHARDABLE_TASKS: readonly string[] = ['perplexity', 'humaneval', 'humaneval-plus', 'mbpp-plus', 'multipl-e-js', 'multipl-e-ts', 'latency'];

/** Parse `--shard i/N` (1 ≤ i ≤ N ≤ MAX_SHARDS); anything else is one line naming the value and the form. */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const hint = 'write --shard i/N with whole numbers 1 ≤ i ≤ N, e.g. --shard 1/3 on the first of three machines';
  if (!match) throw new UsageError(`--shard must look like i/N, got "${text}"`, { hint });
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1 || count > MAX_SHARDS) throw new UsageError(`--shard ${text}: N must be from 1 to ${MAX_SHARDS}`, { hint });
  if (index < 1 || index > count) throw new UsageError(`--shard ${text}: i must be from 1 to N (${count})`, { hint });
  return { index, count };
}

/** The share (1-based) of one unit of a task among `count` shards. */
export function shardOf(task: string, unit: string, count: number): number {
  const digest = createHash('sha256').update(`${task}/${unit}`).digest();
  return (digest.readUInt32BE(0) % count) + 1;
}

/** Whether a unit belongs to this run's shard; every unit does when the run is not sharded. */
export function inShard(shard: Shard | undefined, task: string, unit: string): boolean {
  return shard === undefined || shard.count === 1 || shardOf(task, unit, shard.count) === shard.index;
}

/** The units of a task that belong to this run's shard, in their order. */
export function shardUnits<T>(shard: Shard | undefined, task: string, units: readonly T[], unitKey: (unit: T) => string): T[] {
  return shard === undefined ? [...units] : units.filter((unit) => inShard(shard, task, unitKey(unit)));
}

/** How a shard reads in names and messages: `2/3`. */
export function shardLabel(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/** The default run directory's suffix for a shard (`-shard2of3`): two shards on one machine never collide. */
export function shardDirectorySuffix(shard: Shard | undefined): string {
  return shard === undefined ? '' : `-shard${shard.index}of${shard.count}`;
}
