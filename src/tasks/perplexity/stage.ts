import type { ModelBackend } from '../../backends/model-backend.js';
import { Progress } from '../../util/progress.js';
import type { PerplexityConfig } from './config.js';
import { countWords, PERPLEXITY_RECORDS, rowKey } from './records.js';
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
  for (const group of groupRows(options.texts, options.batchRows)) {
    if (group.every((row) => records.has(rowKey(row.index)))) continue;
    options.signal?.throwIfAborted();
    const { maxLength, stride, addBos, windowing } = options.config;
    const result = await options.engine.score(
      { rows: group, max_length: maxLength, stride, add_bos: addBos, ...(windowing === undefined ? {} : { windowing }) },
      { signal: options.signal },
    );
    const texts = new Map(group.map((row) => [row.index, row.text]));
    for (const row of result.rows) {
      const key = rowKey(row.index);
      if (records.has(key)) continue;
      await records.append({ key, ...row, n_words: countWords(texts.get(row.index) ?? '') });
      progress.tick();
    }
  }
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
