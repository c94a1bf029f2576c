import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HUMANEVAL_FILE, runCli } from '../support/spawn-cli.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'evalpipe-cli-'));
}

describe('evalpipe run (real CLI, real engine process)', () => {
  it('the README main job: --preset smoke prints a perplexity and writes a complete run directory', async () => {
    const runDir = join(await tempDir(), 'smoke');
    const result = await runCli(['run', '--preset', 'smoke', '--run-dir', runDir]);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/perplexity\s+\d+\.\d+/);
    const manifest = JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ schema_version: 1, config: { model: 'preset:trained-tiny-starcoder2' } });
    expect(manifest.model.weights_sha256).toMatch(/^[0-9a-f]{64}$/);
    // the trained default says how it was trained, and the report never presents it as StarCoder2 or as random
    const record = JSON.parse(await readFile(join('cuda', 'evalpipe_engine', 'trained', 'tiny-starcoder2', 'training.json'), 'utf8'));
    expect(manifest.model.trained).toMatchObject({
      record: 'cuda/evalpipe_engine/trained/tiny-starcoder2/training.json',
      seed: record.seed,
      corpus: { files: record.corpus.train.files, file_list_sha256: record.corpus.file_list_sha256 },
      held_out_perplexity: record.held_out.perplexity,
    });
    const report = await readFile(join(runDir, 'report.md'), 'utf8');
    expect(report).toContain('trained-tiny-starcoder2 fp32 sdpa (trained by evalpipe)');
    expect(report).toContain("not StarCoder2's weights");
    expect(report).not.toContain('random weights');
    expect(manifest.engine.torch).toBeTruthy();
    expect(manifest.datasets.perplexity).toMatchObject({ source: 'builtin', rowCount: 24 });
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    expect(results.perplexity.rows).toBe(24);
    expect(results.perplexity.perplexity).toBeCloseTo(Math.exp(results.perplexity.nll_sum / results.perplexity.scored_tokens), 9);

    // The same command again resumes: nothing left to score, so no engine starts, and the figures are identical.
    const again = await runCli(['run', '--preset', 'smoke', '--run-dir', runDir, '--json']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/resuming run/);
    expect(again.stderr).not.toMatch(/engine: starting/);
    const summary = JSON.parse(again.stdout);
    expect(summary.perplexity.nll_sum).toBe(results.perplexity.nll_sum);
  });

  it.each([
    [['--rows', '0'], /--rows must be a positive whole number, got 0/, 2], // every bad value exits 2
    [['--rows', '-4'], /--rows must be a positive whole number, got -4/, 2],
    [['--model', '/nonexistent/checkpoint'], /engine load: .*nonexistent\/checkpoint/, 1],
    [['--text-field', 'no_such_column'], /no_such_column/, 2],
  ])('bad input %j: one clear error, non-zero exit, no complete-looking results', async (extra, message, code) => {
    const runDir = join(await tempDir(), 'bad');
    const result = await runCli(['run', '--preset', 'smoke', '--run-dir', runDir, ...extra]);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/internal error|    at /);
    expect(existsSync(join(runDir, 'results.json'))).toBe(false);
  });

  it('rejects a data set with an empty row and one that is not UTF-8, naming the row', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'empty.jsonl'), '{"text":"def a(): pass"}\n{"text":""}\n');
    const empty = await runCli(['run', '--preset', 'smoke', '--dataset', join(dir, 'empty.jsonl'), '--run-dir', join(dir, 'r1')]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/row 1.*empty|empty.*row 1/i);
    await writeFile(join(dir, 'latin1.jsonl'), Buffer.concat([Buffer.from('{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    const latin1 = await runCli(['run', '--preset', 'smoke', '--dataset', join(dir, 'latin1.jsonl'), '--run-dir', join(dir, 'r2')]);
    expect(latin1.code).toBe(1);
    expect(latin1.stderr).toMatch(/UTF-8/);
    expect(existsSync(join(dir, 'r2', 'results.json'))).toBe(false);
  });

  it('refuses to resume with a changed config, naming the field', async () => {
    const runDir = join(await tempDir(), 'changed');
    expect((await runCli(['run', '--preset', 'smoke', '--rows', '4', '--run-dir', runDir])).code).toBe(0);
    const changed = await runCli(['run', '--preset', 'smoke', '--rows', '5', '--run-dir', runDir]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/differs in: perplexity\.rows/);
    expect(changed.stderr).toMatch(/--fresh/);
  });

  it('HumanEval two-phase: generate on one machine, execute,score,report on a copy of the run directory', async () => {
    const dir = await tempDir();
    const gpuSide = join(dir, 'gpu-run');
    const common = ['run', '--preset', 'smoke', '--tasks', 'humaneval', '--humaneval', HUMANEVAL_FILE, '--limit', '3', '--n', '2', '--max-new-tokens', '16'];
    const generated = await runCli([...common, '--stages', 'generate', '--run-dir', gpuSide]);
    expect(generated.code).toBe(0);
    expect(existsSync(join(gpuSide, 'results.json'))).toBe(false);
    const generateLines = (await readFile(join(gpuSide, 'records', 'generate.jsonl'), 'utf8')).trim().split('\n');
    expect(generateLines).toHaveLength(6);
    const cpuSide = join(dir, 'cpu-run');
    await cp(gpuSide, cpuSide, { recursive: true });
    const executed = await runCli([...common, '--stages', 'execute,score,report', '--run-dir', cpuSide, '--json']);
    expect(executed.stderr).not.toMatch(/engine: starting/);
    expect(executed.code).toBe(0);
    const summary = JSON.parse(executed.stdout);
    expect(summary.humaneval).toMatchObject({ n_problems: 3, n_samples_per_problem: 2 });
    expect(Object.keys(summary.humaneval.pass_at_k)).toEqual(['pass@1']);
    expect(summary.humaneval.omitted_k.map((entry: { k: number }) => entry.k)).toEqual([10, 100]);
    const statuses = Object.values(summary.humaneval.status_counts as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(statuses).toBe(6);
    expect(existsSync(join(cpuSide, 'report.html'))).toBe(true);
  });

  it('--verdicts isolated: part of the run identity, records carry both verdicts, results and report name the suspects', async () => {
    const dir = await tempDir();
    const common = ['run', '--preset', 'smoke', '--tasks', 'humaneval', '--humaneval', HUMANEVAL_FILE, '--limit', '3', '--max-new-tokens', '16'];
    const isolated = await runCli([...common, '--verdicts', 'isolated', '--run-dir', join(dir, 'isolated'), '--json']);
    expect(isolated.code, isolated.stderr).toBe(0);
    const summary = JSON.parse(isolated.stdout);
    expect(summary.humaneval.isolation).toMatchObject({ verdicts: 'isolated', suspect_count: 0, suspects: [], unsupported_problems: [] });
    const manifest = JSON.parse(await readFile(join(dir, 'isolated', 'manifest.json'), 'utf8'));
    expect(manifest.config.humaneval.verdicts).toBe('isolated');
    const records = (await readFile(join(dir, 'isolated', 'records', 'execute.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(records).toHaveLength(3);
    for (const record of records) expect(record).toMatchObject({ isolation: 'checked', default_status: expect.any(String), suspect: false });
    expect(await readFile(join(dir, 'isolated', 'report.md'), 'utf8')).toMatch(/Suspect samples \(isolated verdicts\)/);
    // the default mode is another run (its identity leaves the field out, as before the option existed)
    const plain = await runCli([...common, '--run-dir', join(dir, 'plain'), '--json']);
    expect(plain.code).toBe(0);
    const plainManifest = JSON.parse(await readFile(join(dir, 'plain', 'manifest.json'), 'utf8'));
    expect(plainManifest.config.humaneval).not.toHaveProperty('verdicts');
    expect(plainManifest.config_hash).not.toBe(manifest.config_hash);
    const bad = await runCli([...common, '--verdicts', 'strict', '--run-dir', join(dir, 'bad')]);
    expect(bad.code).toBe(2); // every bad value exits 2
    expect(bad.stderr).toMatch(/--verdicts must be one of default, isolated, got "strict"/);
  });

  it('the sandbox image is in the manifest, and a resume on another image is refused', async () => {
    const runDir = join(await tempDir(), 'sandbox-image');
    const args = [
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--run-dir',
      runDir,
    ];
    expect((await runCli(args)).code).toBe(0);
    const manifestPath = join(runDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    expect(manifest.sandbox).toMatchObject({ image: expect.stringMatching(/^evalpipe-sandbox:[0-9a-f]{12}$/), image_id: expect.stringMatching(/^sha256:/) });
    expect(manifest.sandbox.image.endsWith(manifest.sandbox.recipe_sha)).toBe(true);
    // as if the image had been rebuilt since: one execution left to do, and another image id on record
    const executions = join(runDir, 'records', 'execute.jsonl');
    await writeFile(executions, `${(await readFile(executions, 'utf8')).trim().split('\n')[0]}\n`);
    await writeFile(manifestPath, JSON.stringify({ ...manifest, sandbox: { ...manifest.sandbox, image_id: `sha256:${'0'.repeat(64)}` } }));
    const resumed = await runCli(args);
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toMatch(/the sandbox image changed since this run started/);
  });

  it('generation resumes only the missing samples of a task, and they equal the uninterrupted ones', async () => {
    const runDir = join(await tempDir(), 'gen-resume');
    const args = [
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '2',
      '-n',
      '3',
      '--temperature',
      '0.8',
      '--max-new-tokens',
      '12',
      '--stages',
      'generate',
      '--run-dir',
      runDir,
    ];
    expect((await runCli(args)).code).toBe(0);
    const file = join(runDir, 'records', 'generate.jsonl');
    const complete = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(complete).toHaveLength(6);
    // Keep all but one sample of the first task, as if the process died before writing it.
    const dropped = complete.find((record) => record.task_id === complete[0].task_id && record.sample_index === 1);
    const kept = complete.filter((record) => record !== dropped);
    await writeFile(file, `${kept.map((record) => JSON.stringify(record)).join('\n')}\n`);
    const resumed = await runCli(args);
    expect(resumed.code).toBe(0);
    const after = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(after).toHaveLength(6);
    expect(after.at(-1)).toEqual(dropped);
  });

  it('execute without generated samples says which stage to run first', async () => {
    const runDir = join(await tempDir(), 'no-gen');
    const result = await runCli([
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '2',
      '--stages',
      'execute',
      '--run-dir',
      runDir,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not been generated yet.*--stages generate/s);
  });
});
