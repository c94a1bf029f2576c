import { RunStoreError } from '../../util/errors.js';
import type { IsolationSummary } from '../../tasks/humaneval/isolation-summary.js';
import type { FailureType } from '../../tasks/humaneval/results.js';
import type { LatencyCell } from '../../tasks/latency/records.js';
import { TASK_REGISTRY } from '../../tasks/registry.js';
import { estimateFromJson, type Estimate, type EstimateJson } from '../statistics.js';
import { readRunData, type RunData } from '../store/run-reader.js';
import type { LoadResult, TrainedProvenance } from '../../backends/engine/protocol.js';

/** Presets whose weights were trained (cuda/evalpipe_engine/trained_presets.py), not generated. */
const TRAINED_PRESET_PREFIX = 'preset:trained-';

/** Whether a run's checkpoint was generated with random weights: a preset that is not a trained one. */
function isRandomPreset(loaded: LoadResult | null | undefined, model: string): boolean {
  if (loaded?.trained || model.startsWith(TRAINED_PRESET_PREFIX)) return false;
  return loaded?.source === 'preset' || model.startsWith('preset:');
}

/** A latency cell as reports show it: the latency stage's record without its model/precision labels. */
export type LatencyCellSummary = Omit<LatencyCell, 'model' | 'quant' | 'attn'>;

/** The settings a run was made with, as its manifest records them (what a reader needs to compare runs). */
export interface RunSettingsSummary {
  tasks: string[];
  /** --device as asked (auto, cpu, cuda). */
  deviceChoice: string;
  /** Whether the batch-invariant engine ran (the engine's answer), else what was asked; null: not known. */
  deterministic: boolean | null;
  seed: number;
  backend: string | null;
  humaneval?: {
    n: number;
    temperature: number;
    topP: number;
    maxNewTokens: number;
    stop: string[];
    stripPrompt: boolean;
    limit: number | null;
    /** Problems the data set gave the run (the manifest's row count); null: not recorded. */
    problems: number | null;
    dataset: string | null;
    verdicts: 'default' | 'isolated';
    timeoutS: number;
    memoryMb: number;
  };
  perplexity?: {
    dataset: string;
    /** The resolved data-set revision (hub commit) where recorded, else the one asked for. */
    revision: string | null;
    rows: number;
    textField: string | null;
    /** --max-length; null: the default, min(model max, 4096). */
    maxLength: number | null;
    /** The model's maximum positions (for the default window); null: not recorded. */
    modelMaxPositions: number | null;
    stride: number | null;
    addBos: boolean;
  };
}

/** One run reduced to what reports and the leaderboard show: read from its results.json and manifest only. */
export interface RunSummary {
  runId: string;
  dir: string;
  configHash: string;
  model: string;
  /** The checkpoint was generated with random weights (a preset such as preset:tiny-starcoder2), not trained. */
  randomWeights: boolean;
  /** The checkpoint is a small model evalpipe trained itself (preset:trained-tiny-starcoder2): its training record. */
  trained: TrainedProvenance | null;
  /** Whether the run has a results.json; without one it has no figures (not scored yet, or never re-scored). */
  scored: boolean;
  settings: RunSettingsSummary;
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
    /** Rows the engine could not score, left out of the figures (0 when none). */
    rowsFailed: number;
  };
  humaneval?: {
    passAtK: Record<string, Estimate>;
    nProblems: number;
    nSamplesPerProblem: number;
    statusCounts: Record<string, number>;
    /** Why candidates failed (results.json humaneval.failure_types); undefined in results written before it. */
    failureTypes?: FailureType[];
    /** Only for a run with --verdicts isolated. */
    isolation?: IsolationSummary;
  };
  latency: LatencyCellSummary[];
  /** Every scored task's headline figures (its EvalTask.headline), in registry order. */
  taskHeadlines: { task: string; metrics: Record<string, Estimate> }[];
  /** Largest peak GiB over the latency cells that ran. */
  peakGib: number | null;
}

function settingsOf(manifest: RunData['manifest']): RunSettingsSummary {
  const { config } = manifest;
  const settings: RunSettingsSummary = {
    tasks: [...config.tasks],
    deviceChoice: config.device,
    deterministic: manifest.model?.deterministic ?? config.deterministic ?? null,
    seed: config.seed,
    backend: manifest.model?.backend ?? config.backend ?? null,
  };
  const humaneval = config.humaneval;
  if (config.tasks.includes('humaneval') && humaneval) {
    const dataset = manifest.datasets.humaneval;
    settings.humaneval = {
      n: humaneval.n,
      temperature: humaneval.temperature,
      topP: humaneval.topP,
      maxNewTokens: humaneval.maxNewTokens,
      stop: manifest.stop_sequences?.length ? [...manifest.stop_sequences] : [...humaneval.stop],
      stripPrompt: manifest.prompt_handling?.strip_prompt ?? humaneval.stripPrompt,
      limit: humaneval.limit ?? null,
      problems: dataset?.rowCount ?? null,
      dataset: dataset?.id ?? humaneval.source ?? null,
      verdicts: humaneval.verdicts === 'isolated' ? 'isolated' : 'default',
      timeoutS: humaneval.timeoutS,
      memoryMb: humaneval.memoryMb,
    };
  }
  const perplexity = config.perplexity;
  if (config.tasks.includes('perplexity') && perplexity) {
    const dataset = manifest.datasets.perplexity;
    settings.perplexity = {
      dataset: dataset?.id ?? perplexity.dataset,
      revision: dataset?.revision ?? perplexity.revision ?? null,
      rows: dataset?.rowCount ?? perplexity.rows,
      textField: perplexity.textField ?? null,
      maxLength: perplexity.maxLength ?? null,
      modelMaxPositions: manifest.model?.max_position_embeddings ?? null,
      stride: perplexity.stride ?? null,
      addBos: perplexity.addBos,
    };
  }
  return settings;
}

/** A run directory's summary; refused when its records were edited since (their checksums are verified). */
export async function summariseRunDir(directory: string): Promise<RunSummary> {
  const run = await readRunData(directory);
  await run.verifyRecords();
  return summariseRun(run);
}

/** The summary of an opened run directory; a run not scored yet (no results.json) has no figures. */
export async function summariseRun(run: Pick<RunData, 'dir' | 'manifest' | 'results'>): Promise<RunSummary> {
  const { manifest } = run;
  const { config } = manifest;
  const device = manifest.hardware.device;
  const summary: RunSummary = {
    runId: manifest.run_id,
    dir: run.dir,
    configHash: manifest.config_hash,
    model: config.model,
    randomWeights: isRandomPreset(manifest.model, config.model),
    trained: manifest.model?.trained ?? null,
    scored: run.results !== undefined,
    settings: settingsOf(manifest),
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
    taskHeadlines: [],
    peakGib: null,
  };

  const { results } = run;
  if (results?.perplexity) {
    const section = results.perplexity;
    summary.perplexity = {
      // results.json written before the score stage kept standard errors has the values alone
      perplexity: section.estimates ? estimateFromJson(section.estimates.perplexity) : { value: section.perplexity, se: null, n: section.rows },
      bitsPerByte: section.estimates ? estimateFromJson(section.estimates.bits_per_byte) : { value: section.bits_per_byte, se: null, n: section.rows },
      tokens: section.scored_tokens,
      dataset: section.dataset,
      datasetSha256: section.dataset_sha256,
      rows: new Map(Object.entries(section.per_row ?? {})),
      rowsFailed: section.rows_failed ?? 0,
    };
  }
  if (results?.humaneval) {
    const section = results.humaneval;
    summary.humaneval = {
      passAtK: section.estimates
        ? Object.fromEntries(Object.entries(section.estimates).map(([k, estimate]) => [k, estimateFromJson(estimate)]))
        : Object.fromEntries(Object.entries(section.pass_at_k).map(([k, value]) => [k, { value, se: null, n: section.n_problems }])),
      nProblems: section.n_problems,
      nSamplesPerProblem: section.n_samples_per_problem,
      statusCounts: section.status_counts,
      ...(section.failure_types ? { failureTypes: section.failure_types } : {}),
      ...(section.isolation ? { isolation: section.isolation } : {}),
    };
  }
  if (results?.latency) {
    summary.latency = results.latency.cells
      .map(({ model: _model, quant: _quant, attn: _attn, ...cell }) => cell)
      .sort((a, b) => a.batch - b.batch || a.ctx - b.ctx);
    const peaks = summary.latency.map((cell) => cell.peak_gib).filter((value): value is number => typeof value === 'number');
    summary.peakGib = peaks.length > 0 ? Math.max(...peaks) : null;
  }
  const sections = (results ?? {}) as Record<string, unknown>;
  for (const task of TASK_REGISTRY) {
    const section = sections[task.name];
    if (section === undefined) continue;
    const metrics = (task.headline as (value: unknown) => Record<string, EstimateJson>)(section);
    summary.taskHeadlines.push({
      task: task.name,
      metrics: Object.fromEntries(Object.entries(metrics).map(([name, value]) => [name, estimateFromJson(value)])),
    });
  }
  return summary;
}

/** Summaries of several run directories; a directory that cannot be read is an error naming it. */
export async function summariseRunDirs(directories: readonly string[]): Promise<RunSummary[]> {
  if (directories.length === 0) throw new RunStoreError('no run directories given', { hint: 'pass one or more run directories, e.g. results/*' });
  const summaries: RunSummary[] = [];
  for (const directory of directories) summaries.push(await summariseRunDir(directory));
  return summaries;
}
