import { exactSum } from '../util/exact-sum.js';
/** Standard errors for the metrics we publish. Pure functions: the score stage computes them from the records. */

export interface Estimate {
  value: number;
  /** Standard error; null when it is not defined (fewer than two units). */
  se: number | null;
  n: number;
}

/**
 * A ratio of sums Σa / Σb over n units (rows), with its delta-method standard error (sums exactly rounded, so
 * the order of the units never changes a bit):
 * Var(r) ≈ Σ (a_i − r·b_i)² / ((n − 1) · n · b̄²).
 */
export function ratioEstimate(units: readonly { a: number; b: number }[]): Estimate {
  const n = units.length;
  const sumA = exactSum(units.map((unit) => unit.a));
  const sumB = exactSum(units.map((unit) => unit.b));
  const ratio = sumB > 0 ? sumA / sumB : Number.NaN;
  if (n < 2 || !(sumB > 0)) return { value: ratio, se: null, n };
  const meanB = sumB / n;
  const squares = exactSum(units.map((unit) => (unit.a - ratio * unit.b) ** 2));
  const variance = squares / ((n - 1) * n * meanB * meanB);
  return { value: ratio, se: Math.sqrt(variance), n };
}

/** Token perplexity exp(Σ NLL / Σ tokens) over rows; its s.e. by the delta method, exp(r) · se(r). */
export function perplexityEstimate(rows: readonly { nll_sum: number; n_scored_tokens: number }[]): Estimate {
  const ratio = ratioEstimate(rows.map((row) => ({ a: row.nll_sum, b: row.n_scored_tokens })));
  const value = Math.exp(ratio.value);
  return { value, se: ratio.se === null ? null : value * ratio.se, n: ratio.n };
}

/** Bits per UTF-8 byte Σ NLL / (ln 2 · Σ bytes) over rows, with the delta-method s.e. */
export function bitsPerByteEstimate(rows: readonly { nll_sum: number; n_bytes: number }[]): Estimate {
  const ratio = ratioEstimate(rows.map((row) => ({ a: row.nll_sum / Math.LN2, b: row.n_bytes })));
  return ratio;
}

/** Byte perplexity exp(Σ NLL / Σ UTF-8 bytes) over rows (lm-evaluation-harness's byte_perplexity), delta-method s.e. */
export function bytePerplexityEstimate(rows: readonly { nll_sum: number; n_bytes: number }[]): Estimate {
  return expRatioEstimate(rows.map((row) => ({ a: row.nll_sum, b: row.n_bytes })));
}

/** Word perplexity exp(Σ NLL / Σ words) over rows (lm-evaluation-harness's word_perplexity), delta-method s.e. */
export function wordPerplexityEstimate(rows: readonly { nll_sum: number; n_words: number }[]): Estimate {
  return expRatioEstimate(rows.map((row) => ({ a: row.nll_sum, b: row.n_words })));
}

/** exp(Σa / Σb) with the delta-method s.e. exp(r) · se(r). */
function expRatioEstimate(units: readonly { a: number; b: number }[]): Estimate {
  const ratio = ratioEstimate(units);
  const value = Math.exp(ratio.value);
  return { value, se: ratio.se === null ? null : value * ratio.se, n: ratio.n };
}

export function meanEstimate(values: readonly number[]): Estimate {
  const n = values.length;
  if (n === 0) return { value: Number.NaN, se: null, n };
  const mean = exactSum(values) / n;
  if (n < 2) return { value: mean, se: null, n };
  const variance = exactSum(values.map((value) => (value - mean) ** 2)) / (n - 1);
  return { value: mean, se: Math.sqrt(variance / n), n };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** An estimate as results.json holds it (JSON has no NaN: an undefined value is null). */
export interface EstimateJson {
  value: number | null;
  se: number | null;
  n: number;
}

export function estimateToJson(estimate: Estimate): EstimateJson {
  const finite = (value: number | null): number | null => (value !== null && Number.isFinite(value) ? value : null);
  return { value: finite(estimate.value), se: finite(estimate.se), n: estimate.n };
}

export function estimateFromJson(json: EstimateJson): Estimate {
  return { value: json.value ?? Number.NaN, se: json.se, n: json.n };
}
