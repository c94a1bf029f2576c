import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkRecordFile, comparableResults, withoutTiming } from '../fault/harness.js';
import { runCli } from '../support/spawn-cli.js';

/** Three precisions that run on the CPU, perplexity only (deterministic there): small and exactly comparable. */
const SWEEP = ['sweep', '--preset', 'smoke', '--quant', 'fp32,bf16,int8', '--attn', 'sdpa', '--tasks', 'perplexity', '--rows', '6', '--json'];

interface Summary {
  runs: { label: string; run_dir: string; status: string; error?: string }[];
  report: { markdown: string; html: string } | null;
}

const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as Summary;
const manifestOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
const recordsOf = async (dir: string) => {
  const check = await checkRecordFile(join(dir, 'records', 'perplexity.jsonl'));
  expect(check.duplicates).toEqual([]);
  return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
};
const resultsOf = async (dir: string) => comparableResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')));
/** The joint report without where (the working directory) and when (ISO times: generated at, each run's update). */
const reportOf = async (path: string, cwd: string) =>
  (await readFile(path, 'utf8')).replaceAll(cwd, '<cwd>').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');

/**
 * `sweep --devices cpu,cpu`: the configurations run side by side, each on its own engine (a queue of three
 * configurations over two engines), with the real engine processes on CPU. Every configuration's run directory
 * (its name, records, results.json) and the joint report equal the one-after-another sweep's; the manifests say
 * which engine each ran on; a configuration that fails leaves the others to finish, and the sweep exits 1.
 */
describe('evalpipe sweep --devices: configurations side by side (real engines, CPU)', () => {
  let root: string;
  let sequentialCwd: string;
  let sequential: Summary;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-sweep-devices-'));
    sequentialCwd = join(root, 'sequential');
    await mkdir(sequentialCwd);
    const result = await runCli(SWEEP, { cwd: sequentialCwd });
    expect(result.code, result.stderr).toBe(0);
    sequential = summaryOf(result.stdout);
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('runs each configuration on its own engine and records what the sequential sweep records', async () => {
    const cwd = join(root, 'side-by-side');
    await mkdir(cwd);
    const result = await runCli([...SWEEP, '--devices', 'cpu,cpu'], { cwd });
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('sweep: 3 configurations side by side on cpu#1, cpu#2');
    const summary = summaryOf(result.stdout);
    expect(summary.runs.map((run) => `${run.label}:${run.status}`)).toEqual(['fp32 sdpa:ok', 'bf16 sdpa:ok', 'int8 sdpa:ok']);
    const labels: string[] = [];
    for (const [index, run] of summary.runs.entries()) {
      const reference = sequential.runs[index]!;
      expect(basename(run.run_dir)).toBe(basename(reference.run_dir)); // the same run id
      const manifest = await manifestOf(run.run_dir);
      const referenceManifest = await manifestOf(reference.run_dir);
      expect(manifest.run_id).toBe(referenceManifest.run_id);
      expect(manifest.config_hash).toBe(referenceManifest.config_hash);
      expect(manifest.engines.devices).toEqual(['cpu']); // one engine each
      labels.push(...manifest.engines.labels);
      expect(referenceManifest.engines).toBeUndefined(); // the sequential sweep ran one engine, unplaced
      expect(await recordsOf(run.run_dir), run.label).toEqual(await recordsOf(reference.run_dir));
      expect(await resultsOf(run.run_dir), run.label).toEqual(await resultsOf(reference.run_dir));
    }
    // the first two configurations start at once, one on each engine; the third goes to whichever is free first
    expect(labels.slice(0, 2)).toEqual(['cpu#1', 'cpu#2']);
    expect(['cpu#1', 'cpu#2']).toContain(labels[2]);
    for (const run of summary.runs) expect(result.stderr).toMatch(new RegExp(`\\[${run.label}\\] engine: starting on cpu#[12]`));
    expect(await reportOf(summary.report!.markdown, cwd)).toEqual(await reportOf(sequential.report!.markdown, sequentialCwd));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('a configuration that fails leaves the others to finish on the engines; the sweep exits 1 and reports the rest', async () => {
    const cwd = join(root, 'one-fails');
    await mkdir(join(cwd, 'results'), { recursive: true });
    // bf16's run directory is taken by a plain file: that configuration cannot start, the others can
    await writeFile(join(cwd, 'results', basename(sequential.runs[1]!.run_dir)), 'not a run directory\n');
    const result = await runCli([...SWEEP, '--devices', 'cpu,cpu'], { cwd });
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code, result.stderr).toBe(1);
    const summary = summaryOf(result.stdout);
    expect(summary.runs.map((run) => `${run.label}:${run.status}`)).toEqual(['fp32 sdpa:ok', 'bf16 sdpa:failed', 'int8 sdpa:ok']);
    expect(summary.runs[1]!.error).toBeTruthy();
    expect(result.stderr).toMatch(/\[bf16 sdpa\] warning: sweep: bf16 sdpa failed: /);
    for (const index of [0, 2]) {
      const run = summary.runs[index]!;
      expect(await resultsOf(run.run_dir), run.label).toEqual(await resultsOf(sequential.runs[index]!.run_dir));
    }
    const report = await readFile(summary.report!.markdown, 'utf8');
    expect(report).toContain('from 2 runs');
    expect(report).not.toContain(basename(sequential.runs[1]!.run_dir));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
