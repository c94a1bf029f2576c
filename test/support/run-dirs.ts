import { buildRunConfig, type RawRunOptions } from '../../src/cli/run-options.js';
import { runEvaluation } from '../../src/pipeline/run-pipeline.js';
import { RunDirectory } from '../../src/pipeline/store/run-directory.js';
import { defaultRunId } from '../../src/pipeline/run-config.js';
import { scoreRun } from '../../src/pipeline/score-stage.js';
import type { RunContext } from '../../src/pipeline/stage.js';
import { writeResults } from '../../src/pipeline/store/results.js';
import type { LatencyCellSummary } from '../../src/pipeline/report/run-summary.js';
import { HUMANEVAL_PROBLEMS } from '../../src/tasks/humaneval/task.js';
import { EXECUTION_RECORDS, type ExecutionRecord } from '../../src/tasks/humaneval/records.js';
import { LATENCY_RECORDS } from '../../src/tasks/latency/records.js';
import { PERPLEXITY_RECORDS } from '../../src/tasks/perplexity/records.js';

/** A real smoke run (tiny random model, built-in texts, the real engine process on CPU) into `dir`. */
export async function realSmokeRun(dir: string, extra: RawRunOptions = {}): Promise<void> {
  const { config, settings } = buildRunConfig({ preset: 'smoke', 'run-dir': dir, ...extra });
  await runEvaluation(config, settings, { offline: true });
}

export interface SyntheticRunOptions {
  quant: string;
  attn: string;
  computeDtype?: 'bf16' | 'fp16' | 'fp32';
  device?: string;
  completedAt?: string;
  /** Per-row NLL sums and token counts. */
  perplexityRows?: { nll_sum: number; n_scored_tokens: number; n_bytes: number }[];
  /** Per-problem pass flags, one per sample. */
  execute?: Record<string, boolean[]>;
  /** Problems in the HumanEval file (default: as many as `execute` has; more means --limit took a subset). */
  humanevalRows?: number;
  latency?: LatencyCellSummary[];
  /** The model (default bigcode/starcoder2-3b); a `preset:` model is recorded as the engine records a generated one. */
  model?: string;
  /** What every failing sample's execution record says (default: failed, AssertionError, no message). */
  failure?: Pick<ExecutionRecord, 'status' | 'exception_type' | 'message'>;
  /** More run options (e.g. temperature, stop, max-new-tokens), as the CLI would pass them. */
  runOptions?: RawRunOptions;
}

/**
 * A run directory written through the real run store (RunDirectory, StageRecordFile, atomic results.json) with
 * records chosen by the test, for report/leaderboard cases no CPU run can produce (GPU cards, OOM cells, speedups).
 */
export async function syntheticRun(dir: string, options: SyntheticRunOptions): Promise<string> {
  const tasks = [options.perplexityRows ? 'perplexity' : '', options.execute ? 'humaneval' : '', options.latency ? 'latency' : ''].filter(Boolean).join(',');
  const samples = options.execute ? (Object.values(options.execute)[0]?.length ?? 1) : 1;
  const model = options.model ?? 'bigcode/starcoder2-3b';
  const { config } = buildRunConfig({
    model,
    quant: options.quant,
    attn: options.attn,
    device: 'cuda',
    tasks,
    ...(options.computeDtype ? { 'compute-dtype': options.computeDtype } : {}),
    n: samples,
    limit: options.execute ? Object.keys(options.execute).length : undefined,
    rows: options.perplexityRows?.length ?? 1,
    batches: options.latency ? [...new Set(options.latency.map((cell) => cell.batch))].join(',') : undefined,
    contexts: options.latency ? [...new Set(options.latency.map((cell) => cell.ctx))].join(',') : undefined,
    ...options.runOptions,
  });
  const run = await RunDirectory.open(dir, config, { fresh: false, runId: defaultRunId(config) });
  const card = options.device ?? 'NVIDIA H100 80GB HBM3';
  await run.updateManifest({
    model: {
      model_id: model,
      source: model.startsWith('preset:') ? 'preset' : 'hub',
      architecture: 'Starcoder2ForCausalLM',
      revision: 'abc123',
      weights_sha256: 'f'.repeat(64),
      n_params: 3_030_371_328,
      vocab_size: 49152,
      max_position_embeddings: 16384,
      sliding_window: 4096,
      bos_token_id: 0,
      eos_token_id: 0,
      quant: options.quant as 'bf16',
      attn: options.attn as 'sdpa',
      device: 'cuda',
      dtype: 'bfloat16',
      load_seconds: 3.2,
      weight_bytes: 6_060_742_656,
    },
    engine: {
      engine_version: '0.1.0',
      protocol: 1,
      python: '3.12.3',
      torch: '2.11.0',
      transformers: '5.18.0',
      triton: '3.8.0',
      device: { type: 'cuda', name: card, capability: '9.0', total_gib: 79.1, driver: '580.65' },
    },
    hardware: { ...run.manifest.hardware, device: { type: 'cuda', name: card, capability: '9.0', total_gib: 79.1, driver: '580.65' } },
    datasets: {
      ...(options.perplexityRows
        ? {
            perplexity: {
              source: 'hub',
              id: 'flytech/python-codes-25k',
              revision: 'c0ffee',
              files: [],
              contentSha256: 'a'.repeat(64),
              rowCount: options.perplexityRows.length,
            },
          }
        : {}),
      ...(options.execute
        ? {
            humaneval: {
              source: 'local',
              id: 'HumanEval.jsonl.gz',
              files: [],
              contentSha256: 'b'.repeat(64),
              rowCount: options.humanevalRows ?? Object.keys(options.execute).length,
            },
          }
        : {}),
    },
  });
  if (options.perplexityRows) {
    const records = await run.records(PERPLEXITY_RECORDS);
    for (const [index, row] of options.perplexityRows.entries()) {
      await records.append({ key: `row:${index}`, index, ...row, n_tokens: row.n_scored_tokens, n_windows: 1 });
    }
  }
  if (options.execute) {
    const records = await run.records(EXECUTION_RECORDS);
    for (const [taskId, passes] of Object.entries(options.execute)) {
      for (const [index, passed] of passes.entries()) {
        await records.append({
          key: `exec:${taskId}:${index}`,
          task_id: taskId,
          sample_index: index,
          ...(passed
            ? { status: 'passed' as const, exception_type: null, message: null }
            : (options.failure ?? { status: 'failed' as const, exception_type: 'AssertionError', message: null })),
          passed,
          duration_ms: 1,
          stdout: '',
          stderr: '',
          attempts: 1,
        });
      }
    }
  }
  if (options.latency) {
    const records = await run.records(LATENCY_RECORDS);
    for (const cell of options.latency) {
      await records.append({
        key: `lat:${options.quant}:${options.attn}:${cell.batch}x${cell.ctx}`,
        model: config.model,
        quant: options.quant,
        attn: options.attn,
        ...cell,
        times: [],
      });
    }
  }
  // Scored by the score stage's own code; the HumanEval problems are the synthetic ones (their ids are all it reads).
  const problems = Object.keys(options.execute ?? {}).map((task_id) => ({ task_id, prompt: '', entry_point: '', canonical_solution: '', test: '' }));
  const context: RunContext = {
    store: run,
    config,
    settings: { runDir: dir, fresh: false, stages: undefined, concurrency: 1, batchSize: undefined, json: false, verbose: false },
    hub: { offline: true },
    signal: undefined,
    engine: () => Promise.reject(new Error('a synthetic run has no engine')),
    once: <T>(key: string, make: () => Promise<T>) => (key === HUMANEVAL_PROBLEMS ? Promise.resolve(problems as T) : make()),
  };
  await writeResults(run.path, await scoreRun(context, options.completedAt ? new Date(options.completedAt) : new Date()));
  await run.close();
  return run.path;
}

export function latencyGrid(batches: number[], contexts: number[], seconds: (batch: number, ctx: number) => number | 'oom'): LatencyCellSummary[] {
  return batches.flatMap((batch) =>
    contexts.map((ctx): LatencyCellSummary => {
      const value = seconds(batch, ctx);
      return value === 'oom'
        ? { batch, ctx, status: 'oom', seconds_per_minibatch: null, tokens_per_s: null, peak_gib: null }
        : { batch, ctx, status: 'ok', seconds_per_minibatch: value, tokens_per_s: (batch * ctx) / value, peak_gib: 4 + (batch * ctx) / 4096 };
    }),
  );
}
