import type { EngineProcess } from '../engine/engine-process.js';
import type { ScoredRow } from '../engine/protocol.js';
import { Progress } from '../util/progress.js';
import type { PerplexityConfig } from './run-config.js';
import type { RunDirectory } from './run-directory.js';

export const PERPLEXITY_STAGE = 'perplexity';

export interface TextRow {
  index: number;
  text: string;
}

/** Characters per engine request: keeps each request short enough that a crash loses little work. */
const MAX_CHARS_PER_REQUEST = 64_000;

/**
 * Score every row not yet recorded. Rows go to the engine in small groups; each scored row becomes one record,
 * so a crash loses at most the group in flight.
 */
export async function runPerplexityStage(options: {
  run: RunDirectory;
  engine: EngineProcess;
  texts: TextRow[];
  config: PerplexityConfig;
  batchRows: number;
  signal?: AbortSignal;
}): Promise<void> {
  const records = await options.run.stage(PERPLEXITY_STAGE);
  const todo = options.texts.filter((row) => !records.has(rowKey(row.index)));
  const progress = new Progress('perplexity', options.texts.length, 'rows', process.stderr, options.texts.length - todo.length);
  for (const group of groupRows(todo, options.batchRows)) {
    options.signal?.throwIfAborted();
    const result = await options.engine.request<{ rows: ScoredRow[] }>(
      'score',
      {
        rows: group,
        max_length: options.config.maxLength,
        stride: options.config.stride,
        add_bos: options.config.addBos,
      },
      { signal: options.signal },
    );
    for (const row of result.rows) {
      await records.append({ key: rowKey(row.index), ...row });
      progress.tick();
    }
  }
  progress.finish();
}

export function rowKey(index: number): string {
  return `row:${index}`;
}

function* groupRows(rows: TextRow[], maxRows: number): Generator<TextRow[]> {
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

export interface PerplexitySummary {
  rows: number;
  scored_tokens: number;
  bytes: number;
  nll_sum: number;
  nll_per_token: number;
  perplexity: number;
  bits_per_byte: number;
}

/** Token-level perplexity exp(Σ NLL / Σ scored tokens) and bits per byte Σ NLL / (ln 2 · Σ bytes). */
export function summarisePerplexity(rows: readonly Pick<ScoredRow, 'nll_sum' | 'n_scored_tokens' | 'n_bytes'>[]): PerplexitySummary {
  let nll = 0;
  let tokens = 0;
  let bytes = 0;
  for (const row of rows) {
    nll += row.nll_sum;
    tokens += row.n_scored_tokens;
    bytes += row.n_bytes;
  }
  const nllPerToken = tokens > 0 ? nll / tokens : Number.NaN;
  return {
    rows: rows.length,
    scored_tokens: tokens,
    bytes,
    nll_sum: nll,
    nll_per_token: nllPerToken,
    perplexity: Math.exp(nllPerToken),
    bits_per_byte: bytes > 0 ? nll / (Math.LN2 * bytes) : Number.NaN,
  };
}
