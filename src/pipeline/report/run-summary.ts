import { RunStoreError } from '../../util/errors.js';
import type { LatencyCell } from '../../tasks/latency/stage.js';
import { summariseIsolation, type IsolationSummary } from '../../tasks/humaneval/isolation-summary.js';
import { readRunData, type RunData } from '../store/run-reader.js';
import { bitsPerByteEstimate, passAtKEstimate, perplexityEstimate, type Estimate } from './statistics.js';

/** A latency cell as reports show it: the latency stage's record without its model/precision labels. */
export type LatencyCellSummary = Omit<LatencyCell, 'model' | 'quant' | 'attn'>;

/** One run reduced to what reports and the leaderboard show. Built from the records, so every figure is traceable. */
export interface RunSummary {
  runId: string;
  dir: string;
  configHash: string;
  model: string;
  revision: string | null;
  weightsSha256: string | null;
  nParams: number | null;
  weightBytes: number | null;
  quant: string;
  attn: string;
  /** The compute dtype asked for with --compute-dtype (null: the mode's default). */
  computeDtype: string | null;
  /** The dtype the engine reports it loaded with (e.g. float32, bfloat16). */
  loadedDtype: string | null;
  device: string;
  date: string;
  toolVersion: string;
  engine: { version: string | null; torch: string | null; transformers: string | null; triton: string | null; python: string | null };
  hardware: { card: string; driver: string | null; total_gib: number | null; host_cpu: string; host_cores: number; host_memory_gib: number };
  datasets: { name: string; id: string; revision: string | null; contentSha256: string; rows: number }[];
  perplexity?: {
    perplexity: Estimate;
    bitsPerByte: Estimate;
    tokens: number;
    dataset: string;
    /** Content hash of the scored rows (the same rows in two runs: a paired comparison is possible). */
    datasetSha256: string;
    /** Per-row NLL sums and scored-token counts by record key, for paired comparisons between runs. */
    rows: Map<string, { nll_sum: number; n_scored_tokens: number }>;
  };
  humaneval?: {
    passAtK: Record<string, Estimate>;
    nProblems: number;
    nSamplesPerProblem: number;
    statusCounts: Record<string, number>;
    /** Only for a run with --verdicts isolated. */
    isolation?: IsolationSummary;
  };
  latency: LatencyCellSummary[];
  /** Largest peak GiB over the latency cells that ran. */
  peakGib: number | null;
}

export async function summariseRunDir(directory: string): Promise<RunSummary> {
  return summariseRun(await readRunData(directory));
}

export async function summariseRun(run: RunData): Promise<RunSummary> {
  const { manifest } = run;
  const { config } = manifest;
  const device = manifest.hardware.device;
  const summary: RunSummary = {
    runId: manifest.run_id,
    dir: run.dir,
    configHash: manifest.config_hash,
    model: config.model,
    revision: manifest.model?.revision ?? config.revision ?? null,
    weightsSha256: manifest.model?.weights_sha256 ?? null,
    nParams: manifest.model?.n_params ?? null,
    weightBytes: manifest.model?.weight_bytes ?? null,
    quant: config.quant,
    attn: config.attn,
    computeDtype: config.computeDtype ?? null,
    loadedDtype: manifest.model?.dtype ?? null,
    device: device?.name ?? 'unknown',
    date: run.results?.completed_at ?? manifest.updated_at,
    toolVersion: manifest.tool.version,
    engine: {
      version: manifest.engine?.engine_version ?? null,
      torch: manifest.engine?.torch ?? null,
      transformers: manifest.engine?.transformers ?? null,
      triton: manifest.engine?.triton ?? null,
      python: manifest.engine?.python ?? null,
    },
    hardware: {
      card: device?.name ?? 'unknown',
      driver: device?.driver ?? null,
      total_gib: device?.total_gib ?? null,
      host_cpu: manifest.hardware.host_cpu,
      host_cores: manifest.hardware.host_cores,
      host_memory_gib: manifest.hardware.host_memory_gib,
    },
    datasets: Object.entries(manifest.datasets).map(([name, dataset]) => ({
      name,
      id: dataset.id,
      revision: dataset.revision ?? null,
      contentSha256: dataset.contentSha256,
      rows: dataset.rowCount,
    })),
    latency: [],
    peakGib: null,
  };

  if (config.tasks.includes('perplexity')) {
    const provenance = manifest.datasets.perplexity;
    const records = await run.records('perplexity');
    const rows = [...records.values()].map((record) => ({
      nll_sum: Number(record.nll_sum),
      n_scored_tokens: Number(record.n_scored_tokens),
      n_bytes: Number(record.n_bytes),
    }));
    if (provenance && rows.length >= provenance.rowCount) {
      summary.perplexity = {
        perplexity: perplexityEstimate(rows),
        bitsPerByte: bitsPerByteEstimate(rows),
        tokens: rows.reduce((sum, row) => sum + row.n_scored_tokens, 0),
        dataset: provenance.id,
        datasetSha256: provenance.contentSha256,
        rows: new Map([...records].map(([key, record]) => [key, { nll_sum: Number(record.nll_sum), n_scored_tokens: Number(record.n_scored_tokens) }])),
      };
    }
  }

  if (config.tasks.includes('humaneval')) summary.humaneval = await summariseHumanEval(run);

  if (config.tasks.includes('latency')) {
    const cells = new Map<string, LatencyCellSummary>();
    for (const record of (await run.records('latency')).values()) {
      const cell = toCell(record);
      if (cell) cells.set(`${cell.batch}x${cell.ctx}`, cell);
    }
    for (const raw of run.results?.latency?.cells ?? []) {
      const cell = toCell(raw);
      if (cell && !cells.has(`${cell.batch}x${cell.ctx}`)) cells.set(`${cell.batch}x${cell.ctx}`, cell);
    }
    summary.latency = [...cells.values()].sort((a, b) => a.batch - b.batch || a.ctx - b.ctx);
    const peaks = summary.latency.map((cell) => cell.peak_gib).filter((value): value is number => typeof value === 'number');
    summary.peakGib = peaks.length > 0 ? Math.max(...peaks) : null;
  }
  return summary;
}

/** Execution records grouped by problem -> pass@k with s.e. over problems. Undefined until execute is complete. */
async function summariseHumanEval(run: RunData): Promise<RunSummary['humaneval']> {
  const { config } = run.manifest;
  const records = await run.records('execute');
  const problems = new Map<string, { n: number; c: number }>();
  const statusCounts: Record<string, number> = {};
  for (const record of records.values()) {
    const taskId = typeof record.task_id === 'string' ? record.task_id : taskIdFromKey(record.key);
    const status = typeof record.status === 'string' ? record.status : record.passed === true ? 'passed' : 'unknown';
    const passed = status === 'passed' || record.passed === true;
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    const problem = problems.get(taskId) ?? { n: 0, c: 0 };
    problem.n += 1;
    if (passed) problem.c += 1;
    problems.set(taskId, problem);
  }
  const available = run.manifest.datasets.humaneval?.rowCount;
  const limit = config.humaneval.limit;
  const expected = available === undefined ? limit : limit === undefined ? available : Math.min(limit, available);
  if (problems.size === 0 || (expected !== undefined && problems.size < expected)) {
    // Execution records are not (all) there: fall back to what the score stage wrote, without s.e.
    const results = run.results?.humaneval;
    if (!results?.pass_at_k) return undefined;
    const nProblems = results.n_problems ?? 0;
    return {
      passAtK: Object.fromEntries(Object.entries(results.pass_at_k).map(([k, value]) => [k, { value, se: null, n: nProblems }])),
      nProblems,
      nSamplesPerProblem: results.n_samples_per_problem ?? config.humaneval.n,
      statusCounts: results.status_counts ?? {},
    };
  }
  const n = config.humaneval.n;
  const ks = [1, 10, 100].filter((k) => k <= n);
  const list = [...problems.values()];
  const isolation = summariseIsolation(records.values());
  return {
    passAtK: Object.fromEntries(ks.map((k) => [`pass@${k}`, passAtKEstimate(list, k)])),
    nProblems: problems.size,
    nSamplesPerProblem: n,
    statusCounts,
    ...(isolation ? { isolation } : {}),
  };
}

function taskIdFromKey(key: string): string {
  const body = key.replace(/^exec:/, '');
  const cut = body.lastIndexOf(':');
  return cut > 0 ? body.slice(0, cut) : body;
}

function toCell(raw: unknown): LatencyCellSummary | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const value = raw as Record<string, unknown>;
  if (typeof value.batch !== 'number' || typeof value.ctx !== 'number') return undefined;
  const number = (field: unknown): number | null => (typeof field === 'number' && Number.isFinite(field) ? field : null);
  return {
    batch: value.batch,
    ctx: value.ctx,
    status: value.status === 'oom' ? 'oom' : 'ok',
    seconds_per_minibatch: number(value.seconds_per_minibatch),
    tokens_per_s: number(value.tokens_per_s),
    peak_gib: number(value.peak_gib),
  };
}

/** Summaries of several run directories; a directory that cannot be read is an error naming it. */
export async function summariseRunDirs(directories: readonly string[]): Promise<RunSummary[]> {
  if (directories.length === 0) throw new RunStoreError('no run directories given', { hint: 'pass one or more run directories, e.g. results/*' });
  const summaries: RunSummary[] = [];
  for (const directory of directories) summaries.push(await summariseRunDir(directory));
  return summaries;
}
