import type { HumanEvalProblem } from './dataset.js';
import { isSuspect, type ExecutionResult } from '../../sandbox/execution-result.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { EvalpipeError, RunStoreError } from '../../util/errors.js';
import { Progress } from '../../util/progress.js';
import { executeCandidates, type CandidateSample } from './execute-candidates.js';
import { EXECUTION_RECORDS, GENERATION_RECORDS, executionKey, generationKey, type ExecutionRecord, type GenerationRecord } from './records.js';
import { log } from '../../util/log.js';
import type { HumanEvalConfig } from './config.js';
import type { RunDirectory } from '../../pipeline/store/run-directory.js';

/**
 * The execution record of a sample that was never generated: its prompt did not fit the model
 * (`prompt_too_long`) or the engine failed on it (`engine_error`). A failure, never run.
 */
export function unrunRecord(generation: GenerationRecord): ExecutionRecord {
  const engineError = generation.finish_reason === 'engine_error';
  return {
    key: executionKey(generation.task_id, generation.sample_index),
    task_id: generation.task_id,
    sample_index: generation.sample_index,
    status: engineError ? 'engine_error' : 'prompt_too_long',
    passed: false,
    exception_type: null,
    message: engineError
      ? `the engine could not generate this sample: ${generation.error ?? 'no message'}`
      : "the prompt fills the model's context: nothing was generated",
    duration_ms: 0,
    stdout: '',
    stderr: '',
    attempts: 0,
  };
}

/** Whether a generation has nothing to run (see unrunRecord). */
function neverGenerated(generation: GenerationRecord): boolean {
  return generation.finish_reason === 'prompt_too_long' || generation.finish_reason === 'engine_error';
}

/** The record fields of an isolated verdict (none without one). */
export function isolationFields(result: ExecutionResult): Partial<ExecutionRecord> {
  const isolation = result.isolation;
  if (!isolation) return {};
  return {
    isolation: isolation.outcome,
    isolation_reason: isolation.reason,
    default_status: isolation.default.status as ExecutionRecord['status'],
    default_exception_type: isolation.default.exceptionType,
    suspect: isSuspect(result),
  };
}

/** Record the sandbox image in the manifest; on resume, refuse one that changed (rebuilt, or another recipe). */
async function recordSandbox(run: RunDirectory, pool: SandboxPool): Promise<void> {
  const now = { image: pool.image, image_id: await pool.imageId(), recipe_sha: pool.image.split(':').pop() ?? '' };
  const before = run.manifest.sandbox;
  if (!before) {
    await run.updateManifest({ sandbox: now });
    return;
  }
  if (before.image_id !== now.image_id || before.recipe_sha !== now.recipe_sha) {
    throw new RunStoreError(
      `the sandbox image changed since this run started (${before.image} ${before.image_id.slice(7, 19)} → ${now.image} ${now.image_id.slice(7, 19)}): executions from both would mix`,
      { hint: 'resume with the sandbox recipe and image the run started with, or pass --fresh to start over' },
    );
  }
}

/**
 * Execute every generated sample that has no execution record yet. A sample whose execution failed for
 * infrastructure reasons (sandbox_error, after the pool's retries) gets no record: it is not the model's fault,
 * so it is never counted, and the next run executes it again.
 */
export async function runExecuteStage(options: {
  run: RunDirectory;
  problems: HumanEvalProblem[];
  config: HumanEvalConfig;
  concurrency: number;
  signal?: AbortSignal;
}): Promise<void> {
  const { config } = options;
  const generated = await options.run.records(GENERATION_RECORDS);
  const executed = await options.run.records(EXECUTION_RECORDS);
  const samples: CandidateSample[] = [];
  const missing: string[] = [];
  const unfit: GenerationRecord[] = [];
  for (const problem of options.problems) {
    for (let index = 0; index < config.n; index += 1) {
      if (executed.has(executionKey(problem.task_id, index))) continue;
      const generation = generated.get(generationKey(problem.task_id, index));
      if (!generation) {
        missing.push(`${problem.task_id}#${index}`);
        continue;
      }
      if (neverGenerated(generation)) unfit.push(generation);
      else samples.push({ task_id: problem.task_id, sample_index: index, completion: generation.completion, prompt: generation.prompt_used });
    }
  }
  if (missing.length > 0) {
    throw new EvalpipeError('stage_incomplete', `execute: ${missing.length} samples have not been generated yet (first: ${missing[0]})`, {
      hint: 'run the generate stage first (--stages generate), or copy the whole run directory from the machine that generated',
    });
  }
  // A sample that was never generated has nothing to execute: it fails as `prompt_too_long` or `engine_error` and
  // the run goes on (counted in the status counts, the summary and the report).
  for (const generation of unfit) await executed.append(unrunRecord(generation));
  for (const status of ['prompt_too_long', 'engine_error'] as const) {
    const count = unfit.filter((generation) => unrunRecord(generation).status === status).length;
    if (count > 0)
      log.warn(
        `execute: ${count} samples failed as ${status} (${status === 'engine_error' ? 'the engine could not generate them' : "the prompt fills the model's context"})`,
      );
  }
  if (samples.length === 0) return;
  const total = options.problems.length * config.n;
  const progress = new Progress('execute', total, 'candidates', process.stderr, total - samples.length);
  let infrastructureFailures = 0;
  const sandbox = {
    timeoutMs: Math.round(config.timeoutS * 1000),
    memoryMb: config.memoryMb,
    concurrency: options.concurrency,
    verdicts: config.verdicts ?? ('default' as const),
  };
  const pool = await SandboxPool.open({ ...sandbox, signal: options.signal });
  try {
    await recordSandbox(options.run, pool);
  } catch (error) {
    await pool.close();
    throw error;
  }
  await executeCandidates({
    problems: options.problems,
    samples,
    pool,
    signal: options.signal,
    onResult: async (result) => {
      if (result.status === 'sandbox_error') {
        infrastructureFailures += 1;
        progress.tick(1, true);
        return;
      }
      const record: ExecutionRecord = {
        key: executionKey(result.task_id, result.sample_index),
        task_id: result.task_id,
        sample_index: result.sample_index,
        status: result.status,
        passed: result.passed,
        exception_type: result.exceptionType,
        message: result.message,
        duration_ms: result.durationMs,
        stdout: result.stdout,
        stderr: result.stderr,
        attempts: result.attempts,
        ...isolationFields(result),
      };
      await executed.append(record);
      progress.tick(1, !result.passed);
    },
  }).finally(() => pool.close());
  progress.finish();
  if (infrastructureFailures > 0) {
    throw new EvalpipeError(
      'sandbox_error',
      `execute: ${infrastructureFailures} candidates could not be run because the sandbox failed (not counted against the model)`,
      {
        hint: 'check the Docker daemon (`docker info`), then run the same command again: only those candidates run again',
      },
    );
  }
}
