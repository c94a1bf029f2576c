import type { DatasetProvenance } from '../../datasets/load.js';
import { bitsPerByteEstimate, estimateToJson, perplexityEstimate, type EstimateJson } from '../../pipeline/statistics.js';
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
  /** Perplexity and bits per byte with their delta-method standard errors over rows. */
  estimates: { perplexity: EstimateJson; bits_per_byte: EstimateJson };
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
export function perplexityResults(records: readonly PerplexityRecord[], provenance: DatasetProvenance & { textField?: string }): PerplexityResults {
  const rows = [...records].sort((a, b) => a.index - b.index);
  return {
    ...summarisePerplexity(rows),
    dataset: provenance.id,
    text_field: provenance.textField ?? '',
    dataset_sha256: provenance.contentSha256,
    estimates: { perplexity: estimateToJson(perplexityEstimate(rows)), bits_per_byte: estimateToJson(bitsPerByteEstimate(rows)) },
    per_row: Object.fromEntries(rows.map((row) => [row.key, { nll_sum: row.nll_sum, n_scored_tokens: row.n_scored_tokens }])),
  };
}
