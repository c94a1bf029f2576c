import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latencyGrid, syntheticRun } from '../../test/support/run-dirs.js';
import { buildLeaderboard } from './build.js';
import type { LeaderboardEntry } from './entry.js';
import { readLeaderboardFile, type LeaderboardFile } from './leaderboard-file.js';
import { formatConflict } from './merge.js';

const ROWS = Array.from({ length: 6 }, (_, i) => ({ nll_sum: 30 + i, n_scored_tokens: 100 + i, n_bytes: 320 + i }));

describe('leaderboard build', () => {
  let root: string;
  let older: string;
  let newer: string;
  let other: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-leaderboard-'));
    // Two runs of the same configuration (same key) that differ in a setting outside the key: the later wins.
    older = await syntheticRun(join(root, 'older'), {
      quant: 'bf16',
      attn: 'sdpa',
      perplexityRows: ROWS,
      completedAt: '2026-11-20T10:00:00.000Z',
      execute: { 'HumanEval/0': [true], 'HumanEval/1': [false] },
    });
    newer = await syntheticRun(join(root, 'newer'), {
      quant: 'bf16',
      attn: 'sdpa',
      perplexityRows: ROWS.slice(0, 5),
      completedAt: '2026-11-25T10:00:00.000Z',
      execute: { 'HumanEval/0': [true], 'HumanEval/1': [true] },
    });
    other = await syntheticRun(join(root, 'nf4'), {
      quant: 'nf4',
      attn: 'sdpa',
      computeDtype: 'fp16',
      perplexityRows: ROWS,
      latency: latencyGrid([2], [4096, 8192], (_b, t) => (t > 4096 ? 'oom' : 0.3)),
    });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes one schema-valid entry per configuration with metrics, n and standard errors', async () => {
    const out = join(root, 'board.json');
    const { board, conflicts } = await buildLeaderboard([other, older], out);
    expect(conflicts).toEqual([]);
    const reread = await readLeaderboardFile(out);
    expect(reread.entries).toHaveLength(2);
    const nf4 = board.entries.find((entry) => entry.precision.quant === 'nf4')!;
    expect(nf4.precision.compute_dtype).toBe('fp16');
    expect(nf4.model).toEqual({ id: 'bigcode/starcoder2-3b', revision: 'abc123', weights_sha256: 'f'.repeat(64), n_params: 3_030_371_328 });
    expect(nf4.hardware.card).toBe('NVIDIA H100 80GB HBM3');
    expect(nf4.engine.torch).toBe('2.11.0');
    expect(nf4.latency.map((cell) => cell.status)).toEqual(['ok', 'oom']);
    expect(nf4.memory.peak_gib).toBe(6);
    expect(nf4.datasets[0]).toMatchObject({ name: 'perplexity', id: 'flytech/python-codes-25k', revision: 'c0ffee', rows: 6 });
    const ppl = nf4.metrics.perplexity!;
    expect(ppl.perplexity.n).toBe(6);
    expect(ppl.perplexity.value).toBeCloseTo(Math.exp(ROWS.reduce((s, r) => s + r.nll_sum, 0) / ROWS.reduce((s, r) => s + r.n_scored_tokens, 0)), 12);
    expect(ppl.perplexity.se).toBeGreaterThan(0);
    const bf16 = board.entries.find((entry) => entry.precision.quant === 'bf16')!;
    expect(bf16.metrics.humaneval!.pass_at_k['pass@1']).toEqual({ value: 0.5, se: 0.5, n: 2 });
  });

  it('keeps the later run per key and reports the conflict', async () => {
    const out = join(root, 'merged.json');
    const { board, conflicts } = await buildLeaderboard([newer, older, other], out);
    expect(board.entries).toHaveLength(2);
    const bf16 = board.entries.find((entry) => entry.precision.quant === 'bf16')!;
    expect(bf16.date).toBe('2026-11-25T10:00:00.000Z');
    expect(bf16.metrics.humaneval!.pass_at_k['pass@1']!.value).toBe(1);
    expect(conflicts).toHaveLength(1);
    expect(formatConflict(conflicts[0]!)).toMatch(
      /^leaderboard conflict for bigcode\/starcoder2-3b \| abc123 \| bf16 \| sdpa \| bfloat16: kept run .* \(2026-11-25T10:00:00.000Z, .*newer\) over run .* \(2026-11-20T10:00:00.000Z, .*older\); their metrics differ$/,
    );
  });

  it('merges an existing leaderboard file with new run directories', async () => {
    const first = join(root, 'first.json');
    await buildLeaderboard([older], first);
    const { board, conflicts } = await buildLeaderboard([first, newer, other], join(root, 'second.json'));
    expect(board.entries).toHaveLength(2);
    expect(conflicts).toHaveLength(1);
    expect(board.entries.find((entry) => entry.precision.quant === 'bf16')!.date).toBe('2026-11-25T10:00:00.000Z');
  });

  it('refuses a leaderboard file that fails the schema, naming the file, entry and field', async () => {
    const good = join(root, 'good.json');
    await buildLeaderboard([older], good);
    const board = JSON.parse(await readFile(good, 'utf8')) as LeaderboardFile;
    const broken = structuredClone(board);
    (broken.entries[0] as unknown as Record<string, unknown>).attention = 'paged';
    (broken.entries[0]!.metrics.perplexity!.perplexity as unknown as Record<string, unknown>).se = 'small';
    const bad = join(root, 'bad.json');
    await writeFile(bad, JSON.stringify(broken));
    await expect(buildLeaderboard([bad], join(root, 'never.json'))).rejects.toThrow(
      `${bad}: entries[0]/metrics/perplexity/perplexity/se must be number,null; entries[0]/attention must be equal to one of the allowed values`,
    );
    const missing = structuredClone(board);
    delete (missing.entries[0] as Partial<LeaderboardEntry>).run;
    await writeFile(bad, JSON.stringify(missing));
    await expect(readLeaderboardFile(bad)).rejects.toThrow(`${bad}: entries[0] is missing the field run`);
    await writeFile(bad, '{"schema_version": 9, "entries": []}');
    await expect(readLeaderboardFile(bad)).rejects.toThrow('leaderboard schema_version 9 is newer than this evalpipe reads (2)');
    await writeFile(bad, '{"schema_version": 2, "entries": [');
    await expect(readLeaderboardFile(bad)).rejects.toThrow(`${bad} is not valid JSON`);
  });

  it('refuses runs that are not scored, naming them; --allow-partial adds them marked partial, and they never replace a complete entry', async () => {
    const unscored = join(root, 'unscored');
    await cp(older, unscored, { recursive: true });
    await rm(join(unscored, 'results.json'));
    await expect(buildLeaderboard([older, unscored], join(root, 'refused.json'))).rejects.toThrow(`1 run is not complete: ${unscored} (not scored)`);
    const { board, partial, conflicts } = await buildLeaderboard([older, unscored], join(root, 'partial.json'), new Date(), { allowPartial: true });
    expect(partial).toEqual([`${unscored} (not scored)`]);
    // The partial copy is the later one given, yet the complete entry stays.
    expect(board.entries).toHaveLength(1);
    expect(board.entries[0]).toMatchObject({ status: 'complete', missing: [], run: { id: expect.any(String) } });
    expect(board.entries[0]!.metrics.perplexity).not.toBeNull();
    expect(conflicts).toHaveLength(1);
    expect(formatConflict(conflicts[0]!)).toMatch(/the dropped one covers less/);
    // Alone, the partial run is an entry marked partial, with no figures.
    const alone = await buildLeaderboard([unscored], join(root, 'alone.json'), new Date(), { allowPartial: true });
    expect(alone.board.entries[0]).toMatchObject({ status: 'partial', missing: ['not scored'], metrics: { perplexity: null, humaneval: null } });
  });

  it('states the generation settings and the subset beside the figures', async () => {
    const { board } = await buildLeaderboard([older], join(root, 'settings.json'));
    const entry = board.entries[0]!;
    expect(entry.settings.humaneval).toMatchObject({ n: 1, temperature: 0, top_p: 0.95, max_new_tokens: 512, strip_prompt: true, verdicts: 'default' });
    expect(entry.settings.humaneval!.stop).toContain('\ndef');
    expect(entry.settings.perplexity).toMatchObject({ dataset: 'flytech/python-codes-25k', revision: 'c0ffee', rows_requested: 6, add_bos: true });
    expect(entry.subset).toEqual({ is_subset: false, humaneval: { problems: 2, of: 2, limit: 2 }, perplexity: { rows: 6, requested: 6 } });
    const subsetRun = await syntheticRun(join(root, 'subset'), {
      quant: 'fp8',
      attn: 'sdpa',
      humanevalRows: 164,
      execute: { 'HumanEval/0': [true], 'HumanEval/1': [false], 'HumanEval/2': [true], 'HumanEval/3': [true] },
    });
    const subset = (await buildLeaderboard([subsetRun], join(root, 'subset.json'))).board.entries[0]!;
    expect(subset.subset).toMatchObject({ is_subset: true, humaneval: { problems: 4, of: 164, limit: 4 } });
  });

  it('reads a version 1 leaderboard file as version 2', async () => {
    const current = join(root, 'current.json');
    await buildLeaderboard([older], current);
    const board = JSON.parse(await readFile(current, 'utf8')) as LeaderboardFile;
    const v1 = {
      ...board,
      schema_version: 1,
      entries: board.entries.map(({ status: _s, missing: _m, settings: _t, subset: _u, ...entry }) => ({ ...entry, schema_version: 1 })),
    };
    const file = join(root, 'v1.json');
    await writeFile(file, JSON.stringify(v1));
    const read = await readLeaderboardFile(file);
    expect(read.schema_version).toBe(2);
    expect(read.entries[0]).toMatchObject({ schema_version: 2, status: 'complete', missing: [], settings: { humaneval: null, perplexity: null } });
  });
});
