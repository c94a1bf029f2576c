import type { DatasetProvenance } from '../../datasets/load.js';
import type { Windowing } from '../../backends/engine/protocol.js';
import {
  bitsPerByteEstimate,
  bytePerplexityEstimate,
  estimateToJson,
  perplexityEstimate,
  wordPerplexityEstimate,
  type EstimateJson,
} from '../../pipeline/statistics.js';
import { exactSum } from '../../util/exact-sum.js';
import type { PerplexityRecord } from './records.js';

export interface PerplexitySummary {
  rows: number;
  scored_tokens: number;
  bytes: number;
  nll_sum: number;
  nll_per_token: number;
  perplexity: number;
  bits_per_byte: number;
}

/** results.json `perplexity`: the totals, their standard errors, and each row's NLL for paired comparisons. */
export interface PerplexityResults extends PerplexitySummary {
  dataset: string;
  text_field: string;
  /** Content hash of the scored rows (two runs on the same rows can be compared row by row). */
  dataset_sha256: string;
  /**
   * Byte perplexity exp(Σ NLL / Σ UTF-8 bytes) and word perplexity exp(Σ NLL / Σ words), as lm-evaluation-harness
   * defines them (words: `len(re.split(r"\s+", text))` per row). Word perplexity is null when a record predates
   * the word count (a run scored before it existed and resumed).
   */
  byte_perplexity: number;
  word_perplexity: number | null;
  words: number | null;
  /** The window plan that scored the rows: evalpipe (ours, the default) or lm-eval (docs/results.md). */
  windowing: Windowing;
  /** Every figure above with its delta-method standard error over rows. */
  estimates: {
    perplexity: EstimateJson;
    bits_per_byte: EstimateJson;
    byte_perplexity: EstimateJson;
    word_perplexity: EstimateJson;
  };
  /** --rows: the rows asked for (`rows` is what the data set had, when fewer). */
  rows_requested?: number;
  /** Rows the engine could not score (left out of every figure above, so `rows` counts only the scored ones). */
  rows_failed?: number;
  failed_rows?: { index: number; error: string }[];
  /** Each row's NLL sum and scored tokens by record key, in row order. */
  per_row: Record<string, { nll_sum: number; n_scored_tokens: number }>;
}

/**
 * Token-level perplexity exp(Σ NLL / Σ scored tokens) and bits per byte Σ NLL / (ln 2 · Σ bytes). The sums are
 * exactly rounded (exactSum), so the order of the records (a resumed run appends in another order) never matters.
 */
export function summarisePerplexity(rows: readonly Pick<PerplexityRecord, 'nll_sum' | 'n_scored_tokens' | 'n_bytes'>[]): PerplexitySummary {
  const nll = exactSum(rows.map((row) => row.nll_sum));
  const tokens = exactSum(rows.map((row) => row.n_scored_tokens));
  const bytes = exactSum(rows.map((row) => row.n_bytes));
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

/** The perplexity section from every row's record (in row order) and the data set's provenance. */
export function perplexityResults(
  records: readonly PerplexityRecord[],
  provenance: DatasetProvenance & { textField?: string },
  windowing: Windowing = 'evalpipe',
): PerplexityResults {
  const sorted = [...records].sort((a, b) => a.index - b.index);
  const failed = sorted.filter((row) => row.error !== undefined);
  const rows = sorted.filter((row) => row.error === undefined);
  const summary = summarisePerplexity(rows);
  const counted = rows.every((row) => Number.isInteger(row.n_words));
  const words = counted ? exactSum(rows.map((row) => row.n_words ?? 0)) : null;
  const wordEstimate = counted
    ? estimateToJson(wordPerplexityEstimate(rows.map((row) => ({ nll_sum: row.nll_sum, n_words: row.n_words ?? 0 }))))
    : { value: null, se: null, n: rows.length };
  return {
    ...summary,
    byte_perplexity: summary.bytes > 0 ? Math.exp(summary.nll_sum / summary.bytes) : Number.NaN,
    word_perplexity: words !== null && words > 0 ? Math.exp(summary.nll_sum / words) : null,
    words,
    windowing,
    dataset: provenance.id,
    text_field: provenance.textField ?? '',
    dataset_sha256: provenance.contentSha256,
    estimates: {
      perplexity: estimateToJson(perplexityEstimate(rows)),
      bits_per_byte: estimateToJson(bitsPerByteEstimate(rows)),
      byte_perplexity: estimateToJson(bytePerplexityEstimate(rows)),
      word_perplexity: wordEstimate,
    },
    per_row: Object.fromEntries(rows.map((row) => [row.key, { nll_sum: row.nll_sum, n_scored_tokens: row.n_scored_tokens }])),
    ...(failed.length > 0 ? { rows_failed: failed.length, failed_rows: failed.map((row) => ({ index: row.index, error: row.error ?? '' })) } : {}),
  };
}
