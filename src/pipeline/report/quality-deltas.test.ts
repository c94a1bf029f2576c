import { describe, expect, it } from 'vitest';
import { qualityDelta, qualityDeltas, qualityDeltaTable } from './quality-deltas.js';
import type { RunSummary } from './run-summary.js';

type Rows = [string, number, number][];

/** Only the fields the paired comparison reads; the rest of a RunSummary does not matter here. */
function run(quant: string, attn: string, rows: Rows, options: { sha?: string; computeDtype?: string; model?: string } = {}): RunSummary {
  return {
    runId: `${quant}-${attn}`,
    model: options.model ?? 'bigcode/starcoder2-3b',
    quant,
    attn,
    computeDtype: options.computeDtype ?? null,
    perplexity: {
      perplexity: { value: 1, se: null, n: rows.length },
      bitsPerByte: { value: 1, se: null, n: rows.length },
      tokens: rows.reduce((sum, [, , tokens]) => sum + tokens, 0),
      dataset: 'flytech/python-codes-25k',
      datasetSha256: options.sha ?? 'a'.repeat(64),
      rows: new Map(rows.map(([key, nll, tokens]) => [key, { nll_sum: nll, n_scored_tokens: tokens }])),
    },
  } as unknown as RunSummary;
}

describe('quality deltas against bf16', () => {
  const bf16: Rows = [
    ['r0', 100, 100],
    ['r1', 220, 200],
    ['r2', 30, 50],
    ['r3', 80, 40],
  ];

  it('pairs rows by key: Δ NLL per token, ppl ratio, per-row spread', () => {
    const int8 = run('int8', 'flash', [
      ['r0', 101, 100],
      ['r1', 224, 200],
      ['r2', 30.5, 50],
      ['r3', 80, 40],
      ['r9', 5, 5],
    ]);
    const delta = qualityDelta(int8, run('bf16', 'flash', bf16))!;
    expect(delta.pairedRows).toBe(4); // r9 has no bf16 counterpart
    expect(delta.nllPerToken.value).toBeCloseTo((1 + 4 + 0.5 + 0) / 390, 12);
    expect(delta.perplexityRatio).toBeCloseTo(Math.exp(5.5 / 390), 12);
    expect(delta.maxAbsRowDelta).toBeCloseTo(0.02, 12); // r1: 4 / 200
    expect(delta.meanAbsRowDelta).toBeCloseTo((0.01 + 0.02 + 0.01 + 0) / 4, 12);
    expect(delta.nllPerToken.se).toBeGreaterThan(0);
  });

  it('leaves out rows scored with a different number of tokens, and says how many', () => {
    const other = run('nf4', 'flash', [
      ['r0', 110, 100],
      ['r1', 230, 210],
      ['r2', 31, 50],
      ['r3', 81, 40],
    ]);
    const delta = qualityDelta(other, run('bf16', 'flash', bf16))!;
    expect(delta.pairedRows).toBe(3);
    expect(delta.mismatchedRows).toBe(1);
    const table = qualityDeltaTable([run('bf16', 'flash', bf16), other])!;
    expect(table.rows[0]![4]).toBe('3 (1 left out)');
  });

  it('compares with the bf16 run of the same model and rows, preferring the same attention backend', () => {
    const runs = [
      run('bf16', 'sdpa', bf16),
      run(
        'bf16',
        'flash',
        bf16.map(([key, nll, tokens]) => [key, nll * 1.01, tokens]),
      ),
      run('bf16', 'flash', bf16, { sha: 'b'.repeat(64) }), // other rows: never a baseline
      run('bf16', 'flash', bf16, { computeDtype: 'fp32' }), // not the plain bf16 run
      run(
        'fp8',
        'flash',
        bf16.map(([key, nll, tokens]) => [key, nll * 1.05, tokens]),
      ),
      run(
        'fp8',
        'eager',
        bf16.map(([key, nll, tokens]) => [key, nll * 1.05, tokens]),
      ),
      run('fp8', 'flash', bf16, { model: 'bigcode/starcoder2-7b' }), // no bf16 run of its own model
    ];
    const deltas = qualityDeltas(runs);
    expect(deltas.map((delta) => `${delta.run.quant}/${delta.run.attn} vs ${delta.baseline.attn}`)).toEqual([
      'bf16/flash vs flash',
      'fp8/flash vs flash',
      'fp8/eager vs sdpa',
    ]);
    expect(deltas[0]!.run.computeDtype).toBe('fp32');
    expect(deltas[1]!.nllPerToken.value).toBeCloseTo((0.05 * 430 - 0.01 * 430) / 390, 12);
  });

  it('has no table when nothing can be paired', () => {
    expect(qualityDeltaTable([run('fp8', 'flash', bf16)])).toBeUndefined();
  });
});
