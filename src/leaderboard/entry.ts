import type { RunSummary } from '../pipeline/report/run-summary.js';
import { estimateToJson, type Estimate } from '../pipeline/statistics.js';
import type { EntryFacts } from './entry-facts.js';

/** 2 added status, missing, settings and subset (docs/results.md: migrating leaderboard files). */
export const LEADERBOARD_ENTRY_SCHEMA_VERSION = 2;

export interface EstimateJson {
  value: number;
  se: number | null;
  n: number;
}

/** One entry; schemas/leaderboard-entry.schema.json is the contract, this type mirrors it. */
export interface LeaderboardEntry extends EntryFacts {
  schema_version: number;
  model: { id: string; revision: string | null; weights_sha256: string | null; n_params: number | null };
  precision: { quant: string; compute_dtype: string | null; loaded_dtype: string | null };
  attention: string;
  engine: {
    tool: 'evalpipe';
    tool_version: string;
    engine_version: string | null;
    python: string | null;
    torch: string | null;
    transformers: string | null;
    triton: string | null;
  };
  hardware: RunSummary['hardware'];
  datasets: { name: string; id: string; revision: string | null; content_sha256: string; rows: number }[];
  metrics: {
    perplexity: { dataset: string; perplexity: EstimateJson; bits_per_byte: EstimateJson; scored_tokens: number } | null;
    humaneval: {
      pass_at_k: Record<string, EstimateJson>;
      n_problems: number;
      n_samples_per_problem: number;
      status_counts: Record<string, number>;
    } | null;
    /** Headline figures of tasks without a section above (a task added to the registry); absent when none. */
    tasks?: Record<string, Record<string, EstimateJson>>;
  };
  latency: RunSummary['latency'];
  memory: { peak_gib: number | null; weight_bytes: number | null };
  date: string;
  run: { id: string; config_hash: string };
}

/** An estimate as an entry holds it (results.json's form), left out when its value is undefined. */
function estimateJson(estimate: Estimate): EstimateJson | undefined {
  const json = estimateToJson(estimate);
  return json.value === null ? undefined : { ...json, value: json.value };
}

/** A leaderboard entry for one run: its summary (results.json and manifest) and what the run says about it. */
export function entryFromSummary(run: RunSummary, facts: EntryFacts): LeaderboardEntry {
  let perplexity: LeaderboardEntry['metrics']['perplexity'] = null;
  if (run.perplexity) {
    const value = estimateJson(run.perplexity.perplexity);
    const bpb = estimateJson(run.perplexity.bitsPerByte);
    if (value && bpb) perplexity = { dataset: run.perplexity.dataset, perplexity: value, bits_per_byte: bpb, scored_tokens: run.perplexity.tokens };
  }
  let humaneval: LeaderboardEntry['metrics']['humaneval'] = null;
  if (run.humaneval) {
    const passAtK: Record<string, EstimateJson> = {};
    for (const [k, estimate] of Object.entries(run.humaneval.passAtK)) {
      const json = estimateJson(estimate);
      if (json) passAtK[k] = json;
    }
    humaneval = {
      pass_at_k: passAtK,
      n_problems: run.humaneval.nProblems,
      n_samples_per_problem: run.humaneval.nSamplesPerProblem,
      status_counts: run.humaneval.statusCounts,
    };
  }
  return {
    schema_version: LEADERBOARD_ENTRY_SCHEMA_VERSION,
    ...facts,
    model: { id: run.model, revision: run.revision, weights_sha256: run.weightsSha256, n_params: run.nParams },
    precision: { quant: run.quant, compute_dtype: run.computeDtype, loaded_dtype: run.loadedDtype },
    attention: run.attn,
    engine: {
      tool: 'evalpipe',
      tool_version: run.toolVersion,
      engine_version: run.engine.version,
      python: run.engine.python,
      torch: run.engine.torch,
      transformers: run.engine.transformers,
      triton: run.engine.triton,
    },
    hardware: run.hardware,
    datasets: run.datasets.map((dataset) => ({
      name: dataset.name,
      id: dataset.id,
      revision: dataset.revision,
      content_sha256: dataset.contentSha256,
      rows: dataset.rows,
    })),
    metrics: { perplexity, humaneval, ...otherTasks(run) },
    latency: run.latency,
    memory: { peak_gib: run.peakGib, weight_bytes: run.weightBytes },
    date: run.date,
    run: { id: run.runId, config_hash: run.configHash },
  };
}

/** Sections of their own in an entry: metrics.perplexity, metrics.humaneval and the latency list. */
const TASKS_WITH_OWN_SECTIONS: readonly string[] = ['perplexity', 'humaneval', 'latency'];

/** `tasks`: every other scored task's headline figures, left out when there are none (so entries stay as they were). */
function otherTasks(run: RunSummary): Pick<LeaderboardEntry['metrics'], 'tasks'> {
  const tasks: Record<string, Record<string, EstimateJson>> = {};
  for (const headline of run.taskHeadlines) {
    if (TASKS_WITH_OWN_SECTIONS.includes(headline.task)) continue;
    const figures: Record<string, EstimateJson> = {};
    for (const [name, estimate] of Object.entries(headline.metrics)) {
      const json = estimateJson(estimate);
      if (json) figures[name] = json;
    }
    tasks[headline.task] = figures;
  }
  return Object.keys(tasks).length > 0 ? { tasks } : {};
}

/** The merge key: one entry per (model, revision, quant, attention, compute dtype). */
export function entryKey(entry: LeaderboardEntry): string {
  return [
    entry.model.id,
    entry.model.revision ?? '-',
    entry.precision.quant,
    entry.attention,
    entry.precision.compute_dtype ?? entry.precision.loaded_dtype ?? '-',
  ].join(' | ');
}
