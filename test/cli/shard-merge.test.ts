import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkRecordFile, comparableResults, withoutTiming } from '../fault/harness.js';
import { HUMANEVAL_FILE, runCli } from '../support/spawn-cli.js';

/**
 * `run --shard i/N` and `evalpipe merge` with the real engine process on CPU (the tiny model, deterministic by
 * default there): the shards' records merged equal an unsharded run's record for record, and results.json is the
 * same apart from where and when (run_dir, completed_at); shards that do not belong together are refused.
 */
describe('--shard i/N and evalpipe merge (real CLI, real engine, real sandbox)', () => {
  let root: string;
  const humaneval = ['--tasks', 'perplexity,humaneval', '--humaneval', HUMANEVAL_FILE, '--limit', '6', '--n', '2', '--max-new-tokens', '16'];
  // the random tiny model, named so the test does not follow what the smoke preset loads
  const smoke = (dir: string, ...extra: string[]) => ['run', '--preset', 'smoke', '--model', 'preset:tiny-starcoder2', '--run-dir', dir, ...extra];
  const ok = async (args: string[]) => {
    const result = await runCli(args);
    expect(result.code, result.stderr).toBe(0);
    return result;
  };
  const records = async (dir: string, stage: string) => {
    const check = await checkRecordFile(join(dir, 'records', `${stage}.jsonl`));
    expect(check.duplicates).toEqual([]);
    return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
  };
  const results = async (dir: string) => comparableResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')));
  /** Three perplexity-only shards of the smoke run, made once and copied by the refusal cases. */
  let shards: string[];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-shards-'));
    shards = [1, 2, 3].map((index) => join(root, `ppl-shard-${index}`));
    for (const [index, dir] of shards.entries()) await ok(smoke(dir, '--shard', `${index + 1}/3`));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('three shards (perplexity, generate, execute) at different batch sizes merge into the unsharded run', async () => {
    const reference = join(root, 'reference');
    await ok(smoke(reference, ...humaneval));
    const dirs = [1, 2, 3].map((index) => join(root, `full-shard-${index}`));
    for (const [index, dir] of dirs.entries()) {
      const shard = await ok(smoke(dir, ...humaneval, '--shard', `${index + 1}/3`, '--batch-size', String([1, 5, 64][index])));
      expect(shard.stderr).toContain(`shard ${index + 1}/3 done`);
      expect(existsSync(join(dir, 'results.json'))).toBe(false); // a shard scores nothing
      const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
      expect(manifest.shard).toMatchObject({ index: index + 1, count: 3, task_versions: { perplexity: 1, humaneval: 1 } });
    }
    const sizes = await Promise.all(dirs.map(async (dir) => (await records(dir, 'perplexity')).size));
    expect(sizes.every((size) => size > 0 && size < 24)).toBe(true);
    expect(sizes.reduce((a, b) => a + b)).toBe(24);
    const merged = join(root, 'merged');
    const merge = await ok(['merge', ...[...dirs].reverse(), '--out', merged, '--json']); // any order of arguments
    expect(JSON.parse(merge.stdout).perplexity.rows).toBe(24);
    for (const stage of ['perplexity', 'generate', 'execute']) {
      expect(await records(merged, stage), stage).toEqual(await records(reference, stage));
    }
    expect(await results(merged)).toEqual(await results(reference));
    expect(existsSync(join(merged, 'report.md'))).toBe(true);
    const manifest = JSON.parse(await readFile(join(merged, 'manifest.json'), 'utf8'));
    expect(manifest.shard).toBeUndefined();
    expect(manifest.merged_from.map((from: { shard: string }) => from.shard)).toEqual(['1/3', '2/3', '3/3']);
    expect(manifest.config_hash).toBe(JSON.parse(await readFile(join(reference, 'manifest.json'), 'utf8')).config_hash);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('shards that ran only --stages perplexity,generate merge unscored, and `run --run-dir OUT` finishes them', async () => {
    const reference = join(root, 'two-reference');
    await ok(smoke(reference, ...humaneval, '--stages', 'perplexity,generate'));
    const dirs = [1, 2].map((index) => join(root, `two-shard-${index}`));
    for (const [index, dir] of dirs.entries()) await ok(smoke(dir, ...humaneval, '--stages', 'perplexity,generate', '--shard', `${index + 1}/2`));
    const merged = join(root, 'two-merged');
    const merge = await ok(['merge', ...dirs, '--out', merged]);
    expect(merge.stdout).toContain(`--run-dir ${merged} --stages execute,score,report`);
    expect(existsSync(join(merged, 'results.json'))).toBe(false);
    expect(await records(merged, 'generate')).toEqual(await records(reference, 'generate'));
    await ok(smoke(merged, ...humaneval, '--stages', 'execute,score,report'));
    await ok(smoke(reference, ...humaneval, '--stages', 'execute,score,report'));
    expect(await records(merged, 'execute')).toEqual(await records(reference, 'execute'));
    expect(await results(merged)).toEqual(await results(reference));
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  const copyShards = async (name: string) => {
    const copies = shards.map((_dir, index) => join(root, name, `shard-${index + 1}`));
    for (const [index, dir] of shards.entries()) await cp(dir, copies[index]!, { recursive: true });
    return copies;
  };
  const refused = async (args: string[], message: string | RegExp, out?: string) => {
    const result = await runCli(args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/internal error|    at /);
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('evalpipe:')),
    ).toHaveLength(1);
    if (out) expect(existsSync(out)).toBe(false); // a refused merge leaves nothing behind
    return result;
  };

  it('refuses shards of another config, another model or another data set, naming the first differing field', async () => {
    const other = join(root, 'rows-20-shard-2');
    await ok(smoke(other, '--rows', '20', '--shard', '2/3'));
    const out = join(root, 'refused-config');
    await refused(['merge', shards[0]!, other, shards[2]!, '--out', out], /the shards disagree on config\.perplexity\.rows: .* has 24, .* has 20/, out);

    const [one, two, three] = await copyShards('weights');
    const manifestPath = join(two!, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    manifest.model.weights_sha256 = '0'.repeat(64);
    await writeFile(manifestPath, JSON.stringify(manifest));
    await refused(
      ['merge', one!, two!, three!, '--out', join(root, 'refused-weights')],
      /the shards disagree on model\.weights_sha256: .* has "[0-9a-f]{16}…", .* has "0{16}…"/,
    );

    const [a, b, c] = await copyShards('data');
    const dataPath = join(c!, 'manifest.json');
    const data = JSON.parse(await readFile(dataPath, 'utf8'));
    data.datasets.perplexity.contentSha256 = 'f'.repeat(64);
    data.shard.task_versions.perplexity = 1; // equal: the data set is the first difference
    await writeFile(dataPath, JSON.stringify(data));
    await refused(['merge', a!, b!, c!, '--out', join(root, 'refused-data')], /the shards disagree on datasets\.perplexity\.contentSha256/);
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('refuses a missing shard, a shard given twice, overlapping shards, an unfinished shard and a directory that is no shard', async () => {
    await refused(['merge', shards[0]!, shards[2]!, '--out', join(root, 'gap')], 'shard 2/3 is missing: 2 of 3 shards given');
    await refused(['merge', shards[0]!, shards[1]!, shards[1]!, '--out', join(root, 'twice')], /shard 2\/3 is given twice/);

    const [one, two, three] = await copyShards('overlap');
    const firstLine = (await readFile(join(one!, 'records', 'perplexity.jsonl'), 'utf8')).split('\n')[0]!;
    const key = JSON.parse(firstLine).key as string;
    await writeFile(join(two!, 'records', 'perplexity.jsonl'), `${await readFile(join(two!, 'records', 'perplexity.jsonl'), 'utf8')}${firstLine}\n`);
    await refused(['merge', one!, two!, three!, '--out', join(root, 'overlap-out')], `the shards overlap: ${key} of records/perplexity.jsonl is in shard 1/3`);

    const [x, y, z] = await copyShards('unfinished');
    const lines = (await readFile(join(y!, 'records', 'perplexity.jsonl'), 'utf8')).trimEnd().split('\n');
    await writeFile(join(y!, 'records', 'perplexity.jsonl'), `${lines.slice(0, -1).join('\n')}\n`);
    const out = join(root, 'unfinished-out');
    await refused(['merge', x!, y!, z!, '--out', out], /shard 2\/3 \(.*\) is incomplete: 1 perplexity units have no record — finish it/, out);

    const whole = join(root, 'whole');
    await ok(smoke(whole, '--rows', '4'));
    await refused(['merge', whole, shards[1]!, '--out', join(root, 'whole-out')], /is not a shard \(its manifest has no shard/);
    await refused(['merge', ...shards], /merge needs --out DIR/);
    expect((await readdir(root)).filter((name) => name.endsWith('-out'))).toEqual([]);
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it.each([['0/3'], ['4/3'], ['1/0'], ['2'], ['x/y']])('--shard %s: one clear line, exit 2, before any work', async (value) => {
    const dir = join(root, `bad-shard-${value.replace('/', '-')}`);
    await refused(smoke(dir, '--shard', value), /--shard /);
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses --shard with the scoring stages, and a shard directory resumed as another shard or as a whole run', async () => {
    await refused(smoke(join(root, 'shard-score'), '--shard', '1/2', '--stages', 'perplexity,score'), /--shard runs the work stages only, not --stages score/);
    const again = await runCli(smoke(shards[0]!, '--shard', '1/3'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('resuming run');
    expect(again.stderr).not.toContain('engine: starting');
    const another = await runCli(smoke(shards[0]!, '--shard', '2/3'));
    expect(another.code).toBe(1);
    expect(another.stderr).toMatch(/holds shard 1\/3, not 2\/3 — resume it with --shard 1\/3/);
    const whole = await runCli(smoke(shards[0]!));
    expect(whole.code).toBe(1);
    expect(whole.stderr).toMatch(/holds shard 1\/3 of a run, and this command has no --shard/);
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
