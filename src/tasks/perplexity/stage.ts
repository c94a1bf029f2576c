import type { ModelBackend } from '../../backends/model-backend.js';
import { forEachInQueue } from '../../pipeline/engines/shared-queue.js';
import { UnitFailureBreaker, unitErrorAction, unitErrorMessage } from '../../pipeline/unit-failures.js';
import { log } from '../../util/log.js';
import { Progress } from '../../util/progress.js';
import type { PerplexityConfig } from './config.js';
import { countWords, PERPLEXITY_RECORDS, type PerplexityRecord, rowKey } from './records.js';
import type { RunDirectory } from '../../pipeline/store/run-directory.js';

export interface TextRow {
  index: number;
  text: string;
}

/** Characters per engine request: keeps each request short enough that a crash loses little work. */
const MAX_CHARS_PER_REQUEST = 64_000;

/** Rows per scoring request when --batch-size is not given. */
export const DEFAULT_SCORE_BATCH_ROWS = 16;

/**
 * Score every row not yet recorded. The engine's requests are the groups `groupRows` cuts from the whole, ordered
 * list of rows: their boundaries depend on the data and the batch size only, never on what is already recorded.
 * A group with any row missing is scored whole again and only its missing rows are appended, so a resumed row
 * shares its request with exactly the rows it had in an uninterrupted run. Each scored row becomes one record, so
 * a crash loses at most the group in flight.
 *
 * A request the engine refuses while staying up (pipeline/unit-failures.ts) is narrowed down: out of memory
 * scores the group in halves, another per-unit error each row alone; a row that fails alone is recorded as failed
 * (`error`) and left out of the figures, so one row cannot stop the run.
 */
export async function runPerplexityStage(options: {
  run: RunDirectory;
  engine: ModelBackend;
  texts: TextRow[];
  config: PerplexityConfig;
  batchRows: number;
  signal?: AbortSignal;
}): Promise<void> {
  const records = await options.run.records(PERPLEXITY_RECORDS);
  const done = options.texts.filter((row) => records.has(rowKey(row.index))).length;
  const progress = new Progress('perplexity', options.texts.length, 'rows', process.stderr, done);
  const breaker = new UnitFailureBreaker('perplexity');
  const { maxLength, stride, addBos, windowing } = options.config;
  const texts = new Map(options.texts.map((row) => [row.index, row.text]));

  const scoreGroup = async (group: TextRow[]): Promise<void> => {
    try {
      const result = await options.engine.score(
        { rows: group, max_length: maxLength, stride, add_bos: addBos, ...(windowing === undefined ? {} : { windowing }) },
        { signal: options.signal },
      );
      for (const row of result.rows) {
        const key = rowKey(row.index);
        if (records.has(key)) continue;
        await records.append({ key, ...row, n_words: countWords(texts.get(row.index) ?? '') });
        progress.tick();
      }
      breaker.succeeded();
    } catch (error) {
      options.signal?.throwIfAborted();
      const action = unitErrorAction(error);
      if (action === 'stop') throw error;
      if (group.length > 1) {
        // Out of memory: halves; another per-unit error: each row alone. Either way the culprit ends up alone.
        const pieces = action === 'split' ? [group.slice(0, Math.ceil(group.length / 2)), group.slice(Math.ceil(group.length / 2))] : group.map((row) => [row]);
        if (action === 'split') log.warn(`perplexity: ${unitErrorMessage(error)}; scoring rows ${group[0]!.index}..${group.at(-1)!.index} in halves`);
        for (const piece of pieces) await scoreGroup(piece);
        return;
      }
      const row = group[0]!;
      log.warn(`perplexity: row ${row.index} failed in the engine (${unitErrorMessage(error)}); it is recorded as failed and left out of the figures`);
      await records.append(failedRowRecord(row, error));
      progress.tick();
      breaker.failed(`row ${row.index}`, error);
    }
  };

  // The fixed groups in one queue; with several engines (--devices) each takes the next group when it is free.
  const todo = [...groupRows(options.texts, options.batchRows)].filter((group) => !group.every((row) => records.has(rowKey(row.index))));
  await forEachInQueue(todo, options.engine.parallelism ?? 1, async (group) => {
    options.signal?.throwIfAborted();
    await scoreGroup(group);
  });
  progress.finish();
}

/**
 * The scoring requests for a list of rows: consecutive runs of at most `maxRows` rows, cut earlier where the
 * characters would pass MAX_CHARS_PER_REQUEST. A function of the rows and `maxRows` alone.
 */
export function* groupRows(rows: readonly TextRow[], maxRows: number): Generator<TextRow[]> {
  let group: TextRow[] = [];
  let chars = 0;
  for (const row of rows) {
    if (group.length > 0 && (group.length >= maxRows || chars + row.text.length > MAX_CHARS_PER_REQUEST)) {
      yield group;
      group = [];
      chars = 0;
    }
    group.push(row);
    chars += row.text.length;
  }
  if (group.length > 0) yield group;
}

/** The record of a row the engine could not score even alone: kept (so a resume does not retry it forever) and left
 * out of every figure, which then covers fewer rows than asked (results.json `rows_failed`, a subset). */
export function failedRowRecord(row: TextRow, error: unknown): PerplexityRecord {
  return {
    key: rowKey(row.index),
    index: row.index,
    nll_sum: 0,
    n_scored_tokens: 0,
    n_tokens: 0,
    n_bytes: 0,
    n_windows: 0,
    error: unitErrorMessage(error),
  };
}
