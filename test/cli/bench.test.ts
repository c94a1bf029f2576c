import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/spawn-cli.js';

const SMALL = [
  '--model',
  'preset:tiny-starcoder2',
  '--device',
  'cpu',
  '--batches',
  '1,2',
  '--contexts',
  '32,64',
  '--warmup',
  '1',
  '--iters',
  '1',
  '--repeats',
  '2',
];

describe('evalpipe bench (real engine, CPU)', () => {
  it('--json: a header naming the device and versions, then one row per cell and attention backend', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'evalpipe-bench-')), 'bench.json');
    const result = await runCli(['bench', ...SMALL, '--quant', 'fp32', '--attn', 'eager,sdpa', '--json', '-o', out]);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0].header).toMatchObject({ card: expect.any(String), torch: expect.any(String), date: expect.any(String) });
    const cells = lines.slice(1);
    expect(cells).toHaveLength(8);
    for (const cell of cells) {
      expect(Object.keys(cell).sort()).toEqual(['attn', 'batch', 'ctx', 'model', 'peak_gib', 'quant', 'seconds_per_minibatch', 'status', 'tokens_per_s']);
      expect(cell.status).toBe('ok');
      expect(cell.seconds_per_minibatch).toBeGreaterThan(0);
      expect(cell.tokens_per_s).toBeCloseTo((cell.batch * cell.ctx) / cell.seconds_per_minibatch, 3);
    }
    expect(new Set(cells.map((cell: { attn: string }) => cell.attn))).toEqual(new Set(['eager', 'sdpa']));
    const file = JSON.parse(await readFile(out, 'utf8'));
    expect(file.cells).toHaveLength(8);
    expect(file.header.card).toBe(lines[0].header.card);
  });

  it('--batch-size N is one batch size; the header says which engine mode was timed; bad sizes are refused', async () => {
    const base = [
      'bench',
      '--model',
      'preset:tiny-starcoder2',
      '--device',
      'cpu',
      '--contexts',
      '32',
      '--warmup',
      '1',
      '--iters',
      '1',
      '--repeats',
      '1',
      '--quant',
      'fp32',
      '--attn',
      'sdpa',
      '--json',
    ];
    for (const [flag, want] of [
      ['--deterministic', true],
      ['--no-deterministic', false],
    ] as const) {
      const result = await runCli([...base, '--batch-size', '3', flag]);
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(lines[0].header.deterministic).toBe(want);
      expect(lines.slice(1).map((cell: { batch: number }) => cell.batch)).toEqual([3]);
    }
    const both = await runCli([...base, '--batch-size', '3', '--batches', '1,2']);
    expect(both.code).toBe(2); // every bad value exits 2
    expect(both.stderr).toMatch(/--batches and --batch-size both give the batch sizes/);
    const zero = await runCli([...base, '--batch-size', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--batch-size must be a whole number from 1 to 4096, got 0/);
  });

  it('prints the study-shaped matrix without --json, and refuses a context past the model maximum', async () => {
    const table = await runCli(['bench', ...SMALL, '--quant', 'fp32', '--attn', 'sdpa']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/fp32 sdpa: seconds per minibatch/);
    expect(table.stdout).toMatch(/^batch\t32\t64$/m);
    const tooLong = await runCli([
      'bench',
      '--model',
      'preset:tiny-starcoder2',
      '--device',
      'cpu',
      '--quant',
      'fp32',
      '--attn',
      'sdpa',
      '--batches',
      '1',
      '--contexts',
      '100000',
    ]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/engine bench: .*(maximum|max)/i);
  });

  it('rejects an unknown precision with the list of valid ones', async () => {
    const result = await runCli(['bench', '--quant', 'int3']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--quant: unknown value\(s\) int3 — use a comma list of fp32, fp16, bf16, int8, nf4, fp8/);
  });
});
