import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRecordFile, comparableResults, withoutTiming } from '../fault/harness.js';
import { multiplEFixtureArgs } from '../support/multipl-e-fixture-args.js';
import { runCli } from '../support/spawn-cli.js';

const STAGES = ['multipl-e-js-generate', 'multipl-e-js-execute', 'multipl-e-ts-generate', 'multipl-e-ts-execute'];

/**
 * `run --shard i/N` and `evalpipe merge` for the MultiPL-E tasks, with the real engine on CPU (deterministic there)
 * and the real isolated-vm sandbox, on the MultiPL-E fixtures (3 JavaScript and 2 TypeScript problems): each shard
 * takes its problems (with their samples), and the three shards merged equal the unsharded run record for record
 * and in results.json (apart from run_dir and completed_at).
 */
describe('--shard i/N and merge for multipl-e-js / multipl-e-ts (real CLI, real engine, isolated-vm)', () => {
  const task = [...multiplEFixtureArgs(), '--n', '2'];
  const run = (dir: string, ...extra: string[]) => ['run', '--preset', 'smoke', ...task, '--run-dir', dir, ...extra];
  const ok = async (args: string[]) => {
    const result = await runCli(args);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code, result.stderr).toBe(0);
    return result;
  };
  /** A stage's records by key, without the fields that measure time; an absent file is an empty share. */
  const records = async (dir: string, stage: string) => {
    const path = join(dir, 'records', `${stage}.jsonl`);
    if (!existsSync(path)) return new Map<string, Record<string, unknown>>();
    const check = await checkRecordFile(path);
    expect(check.duplicates).toEqual([]);
    return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
  };
  const results = async (dir: string) => comparableResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')));

  it('three shards take disjoint shares of the problems, and merged equal the unsharded run', async () => {
    const root = await mkdtemp(join(tmpdir(), 'evalpipe-mpe-shards-'));
    const reference = join(root, 'reference');
    await ok(run(reference));
    const dirs = [1, 2, 3].map((index) => join(root, `shard-${index}`));
    for (const [index, dir] of dirs.entries()) {
      const shard = await ok(run(dir, '--shard', `${index + 1}/3`));
      expect(shard.stderr).toContain(`shard ${index + 1}/3 done`);
      expect(existsSync(join(dir, 'results.json'))).toBe(false); // a shard scores nothing
      const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
      expect(manifest.shard).toMatchObject({ index: index + 1, count: 3, task_versions: { 'multipl-e-js': 1, 'multipl-e-ts': 1 } });
      // a shard records both data sets, even one whose share of a task is empty
      expect(Object.keys(manifest.datasets).sort()).toEqual(['multipl-e-js', 'multipl-e-ts']);
    }
    for (const stage of STAGES) {
      const whole = await records(reference, stage);
      const shares = await Promise.all(dirs.map((dir) => records(dir, stage)));
      // every sample is in exactly one shard, and no shard holds them all: the problems were shared out
      expect(
        shares.reduce((sum, share) => sum + share.size, 0),
        stage,
      ).toBe(whole.size);
      expect(new Set(shares.flatMap((share) => [...share.keys()])).size, stage).toBe(whole.size);
      expect(
        shares.every((share) => share.size < whole.size),
        stage,
      ).toBe(true);
      // a problem's samples stay together in one shard
      for (const share of shares) {
        const samples = new Map<unknown, number>();
        for (const record of share.values()) samples.set(record.task_id, (samples.get(record.task_id) ?? 0) + 1);
        expect(
          [...samples.values()].every((count) => count === 2),
          stage,
        ).toBe(true);
      }
    }
    const merged = join(root, 'merged');
    const merge = await ok(['merge', dirs[2]!, dirs[0]!, dirs[1]!, '--out', merged, '--json']); // any order of arguments
    expect(JSON.parse(merge.stdout)['multipl-e-js'].n_problems).toBe(3);
    for (const stage of STAGES) expect(await records(merged, stage), stage).toEqual(await records(reference, stage));
    expect(await results(merged)).toEqual(await results(reference));
    const manifest = JSON.parse(await readFile(join(merged, 'manifest.json'), 'utf8'));
    expect(manifest.shard).toBeUndefined();
    expect(manifest.merged_from.map((from: { shard: string }) => from.shard)).toEqual(['1/3', '2/3', '3/3']);
    expect(manifest.config_hash).toBe(JSON.parse(await readFile(join(reference, 'manifest.json'), 'utf8')).config_hash);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
