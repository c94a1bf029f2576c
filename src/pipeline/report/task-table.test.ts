import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticRun } from '../../../test/support/run-dirs.js';
import { entryFromSummary } from '../../leaderboard/entry.js';
import { assertValidEntry } from '../../leaderboard/validate.js';
import { summariseRun, type RunSummary } from './run-summary.js';
import { readRunData } from '../store/run-reader.js';
import { entryFacts, type EntryFacts } from '../../leaderboard/entry-facts.js';
import { reportTables, taskTable } from './tables.js';

describe('figures of a task the report has no table for', () => {
  let root: string;
  let summary: RunSummary;
  let facts: EntryFacts;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-task-table-'));
    const dir = await syntheticRun(join(root, 'run'), {
      quant: 'bf16',
      attn: 'sdpa',
      perplexityRows: [
        { nll_sum: 10, n_scored_tokens: 10, n_bytes: 40 },
        { nll_sum: 24, n_scored_tokens: 20, n_bytes: 70 },
      ],
      execute: { 'HumanEval/0': [true], 'HumanEval/1': [false] },
    });
    const run = await readRunData(dir);
    summary = await summariseRun(run);
    facts = entryFacts(run);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads every scored task's headline from results.json, and shows no extra table or entry field for the built-in tasks", () => {
    expect(summary.taskHeadlines.map((headline) => headline.task)).toEqual(['perplexity', 'humaneval']);
    expect(summary.taskHeadlines[0]!.metrics.perplexity!.value).toBeCloseTo(Math.exp(34 / 30), 12);
    expect(summary.taskHeadlines[1]!.metrics['pass@1']).toMatchObject({ value: 0.5, n: 2 });
    expect(taskTable([summary])).toBeUndefined();
    expect(reportTables([summary]).map((table) => table.id)).not.toContain('tasks');
    expect(entryFromSummary(summary, facts).metrics).not.toHaveProperty('tasks');
  });

  it('lists a registered task without a table of its own in the task table and in the leaderboard entry', () => {
    const withNewTask: RunSummary = {
      ...summary,
      taskHeadlines: [...summary.taskHeadlines, { task: 'mbpp', metrics: { 'pass@1': { value: 0.25, se: 0.1, n: 4 } } }],
    };
    const table = taskTable([withNewTask]);
    expect(table?.rows).toEqual([['starcoder2-3b', 'bf16', 'sdpa', 'mbpp', 'pass@1 0.2500 ± 0.1000']]);
    expect(reportTables([withNewTask]).map((each) => each.id)).toContain('tasks');
    const entry = entryFromSummary(withNewTask, facts);
    expect(entry.metrics.tasks).toEqual({ mbpp: { 'pass@1': { value: 0.25, se: 0.1, n: 4 } } });
    expect(() => assertValidEntry(entry, { file: 'test', path: 'entry' })).not.toThrow();
  });
});
