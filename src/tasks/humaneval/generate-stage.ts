import type { ModelBackend } from '../../backends/model-backend.js';
import { forEachInQueue } from '../../pipeline/engines/shared-queue.js';
import { UnitFailureBreaker, unitErrorAction, unitErrorMessage } from '../../pipeline/unit-failures.js';
import { log } from '../../util/log.js';
import { Progress } from '../../util/progress.js';
import type { HumanEvalConfig } from './config.js';
import { GENERATION_RECORDS, generationKey, type GenerationRecord } from './records.js';
import type { RecordKind } from '../../pipeline/store/record-kind.js';
import type { RunDirectory } from '../../pipeline/store/run-directory.js';

export interface PromptProblem {
  task_id: string;
  prompt: string;
}

/** bigcode-evaluation-harness feeds HumanEval prompts as `prompt.strip()`; recorded in the manifest. */
export function promptForGeneration(prompt: string, strip: boolean): string {
  return strip ? prompt.trim() : prompt;
}

/**
 * Samples per engine request and per decode batch when --batch-size is not given. The engine decodes a request's
 * samples as one batch (across problems), so greedy pass@1 sends 64 problems at a time instead of one: on a GPU a
 * decode step of 64 rows costs about what one row does. Finished samples stream back as records, so a crash loses
 * only the unfinished ones.
 */
export const DEFAULT_GENERATE_BATCH_SAMPLES = 64;

/** Problems per request: as many as fit `batchSamples` samples, at least one. */
export function problemsPerRequest(samplesPerProblem: number, batchSamples: number = DEFAULT_GENERATE_BATCH_SAMPLES): number {
  return Math.max(1, Math.floor(batchSamples / Math.max(1, samplesPerProblem)));
}

/**
 * The generate requests: consecutive groups of `problemsPerRequest` problems cut from the whole, ordered problem
 * list. The boundaries depend on the problems, n and the batch size alone, never on what is already recorded.
 */
export function problemGroups<T>(problems: readonly T[], samplesPerProblem: number, batchSamples: number): T[][] {
  const per = problemsPerRequest(samplesPerProblem, batchSamples);
  const groups: T[][] = [];
  for (let start = 0; start < problems.length; start += per) groups.push(problems.slice(start, start + per));
  return groups;
}

/** The sample indices of a task that have no record yet. */
export function missingSamples(taskId: string, n: number, has: (key: string) => boolean): number[] {
  return Array.from({ length: n }, (_, index) => index).filter((index) => !has(generationKey(taskId, index)));
}

/**
 * n completions per problem through the engine. Each finished sample is one record. Requests are the fixed
 * `problemGroups`; a group with any sample missing is generated whole again (every sample of every problem in it,
 * decoded together as in an uninterrupted run) and only the missing samples are appended. Each (task, sample
 * index) has its own seed, and the decode batch a sample shares is the same as in an uninterrupted run, so a
 * sample generated after a crash is the one the uninterrupted run would have made, on the fast path too.
 *
 * A request the engine refuses while staying up is narrowed down (pipeline/unit-failures.ts): out of memory halves
 * the decode batch; another per-unit error runs each problem of the group alone, and a problem that still fails
 * gets its missing samples recorded as `engine_error` (each counts as a failed candidate), so one problem cannot
 * stop the run.
 */
export async function runGenerateStage(options: {
  run: RunDirectory;
  engine: () => Promise<ModelBackend>;
  problems: PromptProblem[];
  config: Pick<HumanEvalConfig, 'n' | 'temperature' | 'topP' | 'maxNewTokens' | 'stop' | 'stripPrompt' | 'sampler'>;
  seed: number;
  /** Samples per request and per decode batch (--batch-size); undefined: DEFAULT_GENERATE_BATCH_SAMPLES, or for an
   * engine that batches continuously, the rows its memory allows. */
  batchSamples: number | undefined;
  signal?: AbortSignal;
  /** The record file the samples go to: humaneval's records/generate.jsonl by default; another task that generates
   * completions the same way (humaneval-plus, mbpp-plus) passes its own stage's kind. */
  records?: RecordKind<GenerationRecord>;
  /** The progress line's label [default: generate]. */
  label?: string;
}): Promise<void> {
  const { config } = options;
  const records = await options.run.records(options.records ?? GENERATION_RECORDS);
  const total = options.problems.length * config.n;
  const missingOf = (problem: PromptProblem) => missingSamples(problem.task_id, config.n, (key) => records.has(key));
  const missing = (problem: PromptProblem) => missingOf(problem).length > 0;
  const staticSamples = options.batchSamples ?? DEFAULT_GENERATE_BATCH_SAMPLES;
  if (!options.problems.some(missing)) return;
  const engine = await options.engine();
  // An engine that batches continuously takes every missing sample in one queue (one request per engine): rows are
  // refilled as samples finish, so no batch waits for its longest sample. Otherwise the fixed problem groups.
  const continuous = options.run.manifest.model?.batching === 'continuous';
  const todo = continuous
    ? evenParts(options.problems.filter(missing), engine.parallelism ?? 1)
    : problemGroups(options.problems, config.n, staticSamples).filter((group) => group.some(missing));
  const progress = new Progress(options.label ?? 'generate', total, 'samples', process.stderr, records.size);
  const allSamples = Array.from({ length: config.n }, (_, index) => index);
  const breaker = new UnitFailureBreaker('generate');
  let batchRowsUsed = 0;

  const request = async (group: PromptProblem[], batchRows: number | undefined): Promise<void> => {
    const prompts = new Map(group.map((problem) => [problem.task_id, promptForGeneration(problem.prompt, config.stripPrompt)]));
    const writes: Promise<void>[] = [];
    // Continuous: only the missing samples (a resume skips finished ones); static: the whole fixed group again.
    const samplesOf = (problem: PromptProblem) => (continuous ? missingOf(problem) : allSamples);
    try {
      const result = await engine.generate(
        {
          requests: group
            .map((problem) => ({ key: problem.task_id, prompt: prompts.get(problem.task_id)!, samples: samplesOf(problem) }))
            .filter((request) => request.samples.length > 0),
          n: config.n,
          temperature: config.temperature,
          top_p: config.topP,
          max_new_tokens: config.maxNewTokens,
          seed: options.seed,
          stop: config.stop,
          ...(batchRows === undefined ? {} : { max_batch_rows: batchRows }),
          ...(config.sampler === undefined ? {} : { sampler: config.sampler }),
        },
        {
          signal: options.signal,
          onSample: (sample) => {
            const key = generationKey(sample.key, sample.sample_index);
            if (records.has(key)) return;
            const record: GenerationRecord = {
              key,
              task_id: sample.key,
              sample_index: sample.sample_index,
              prompt_used: prompts.get(sample.key) ?? '',
              completion: sample.completion,
              finish_reason: sample.finish_reason,
              n_new_tokens: sample.n_new_tokens,
              stop_sequence: sample.stop_sequence,
            };
            writes.push(records.append(record).then(() => progress.tick()));
          },
        },
      );
      batchRowsUsed = Math.max(batchRowsUsed, result.batch_rows ?? batchRows ?? 0);
    } finally {
      await Promise.all(writes);
    }
  };

  const generateGroup = async (group: PromptProblem[], batchRows: number | undefined): Promise<void> => {
    try {
      await request(group, batchRows);
      breaker.succeeded();
    } catch (error) {
      options.signal?.throwIfAborted();
      const action = unitErrorAction(error);
      if (action === 'stop') throw error;
      const rows = batchRows ?? (batchRowsUsed || CONTINUOUS_ROWS_AFTER_OOM * 2);
      if (action === 'split' && rows > 1) {
        const smaller = Math.max(1, Math.floor(rows / 2));
        log.warn(`generate: ${unitErrorMessage(error)}; decoding ${group[0]!.task_id}'s group ${smaller} samples at a time`);
        return generateGroup(group, smaller);
      }
      if (group.length > 1 && continuous) {
        // Halves, so that one failing problem costs a few requests, not one per problem.
        for (const half of evenParts(group, 2)) await generateGroup(half, batchRows);
        return;
      }
      if (group.length > 1) {
        for (const problem of group) await generateGroup([problem], batchRows);
        return;
      }
      const problem = group[0]!;
      log.warn(`generate: ${problem.task_id} failed in the engine (${unitErrorMessage(error)}); its samples are recorded as engine_error`);
      for (const index of missingSamples(problem.task_id, config.n, (key) => records.has(key))) {
        await records.append(engineErrorRecord(problem, index, promptForGeneration(problem.prompt, config.stripPrompt), error));
        progress.tick();
      }
      breaker.failed(problem.task_id, error);
    }
  };

  // The fixed groups in one queue; with several engines (--devices) each takes the next group when it is free.
  await forEachInQueue(todo, engine.parallelism ?? 1, async (group) => {
    options.signal?.throwIfAborted();
    await generateGroup(group, continuous ? options.batchSamples : staticSamples);
  });
  progress.finish();
  const batching = options.run.manifest.batching;
  if (batching && batchRowsUsed > 0) {
    await options.run.updateManifest({
      batching: { ...batching, generate_samples_per_batch: batchRowsUsed, generate_batching: continuous ? 'continuous' : 'static' },
    });
  }
}

/** Rows to retry with after an out-of-memory error when the engine chose the rows and did not say how many. */
const CONTINUOUS_ROWS_AFTER_OOM = 128;

/** At most `parts` contiguous, near-equal, non-empty parts of the list, in order. */
export function evenParts<T>(items: readonly T[], parts: number): T[][] {
  const count = Math.max(1, Math.min(parts, items.length));
  const out: T[][] = [];
  for (let part = 0, start = 0; part < count; part += 1) {
    const end = Math.round(((part + 1) * items.length) / count);
    if (end > start) out.push(items.slice(start, end));
    start = end;
  }
  return out;
}

/** The record of a sample the engine could not generate: an empty completion that fails as `engine_error`. */
export function engineErrorRecord(problem: PromptProblem, sampleIndex: number, promptUsed: string, error: unknown): GenerationRecord {
  return {
    key: generationKey(problem.task_id, sampleIndex),
    task_id: problem.task_id,
    sample_index: sampleIndex,
    prompt_used: promptUsed,
    completion: '',
    finish_reason: 'engine_error',
    n_new_tokens: 0,
    stop_sequence: null,
    error: unitErrorMessage(error),
  };
}
