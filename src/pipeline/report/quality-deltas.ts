import type { RunSummary } from './run-summary.js';
import { ratioEstimate, type Estimate } from '../statistics.js';
import { precisionLabel, shortModel, type Table } from './tables.js';

/** What quantization cost in quality against the bf16 run of the same model on the same rows, row by row. */
export interface QualityDelta {
  run: RunSummary;
  baseline: RunSummary;
  /** Rows scored in both runs with the same number of tokens (same tokenizer, same windows). */
  pairedRows: number;
  /** Rows present in both runs but scored with different token counts: left out of the comparison. */
  mismatchedRows: number;
  /** Σ(NLL − NLL_bf16) / Σ tokens over the paired rows: the change of mean log-likelihood per token (nats), with its
   * paired delta-method standard error (far tighter than comparing two perplexities' own errors). */
  nllPerToken: Estimate;
  /** exp(Δ NLL per token): perplexity / perplexity_bf16 on the paired rows. */
  perplexityRatio: number;
  /** Mean and largest |Δ NLL per token| of a single row: how unevenly the loss moved. */
  meanAbsRowDelta: number;
  maxAbsRowDelta: number;
}

const BASELINE_QUANT = 'bf16';

/** The bf16 run a run is compared with: same model and scored rows, the same attention backend when there is one. */
function baselineFor(run: RunSummary, runs: readonly RunSummary[]): RunSummary | undefined {
  const candidates = runs.filter(
    (other) =>
      other !== run &&
      other.quant === BASELINE_QUANT &&
      other.computeDtype === null &&
      other.model === run.model &&
      other.perplexity !== undefined &&
      other.perplexity.datasetSha256 === run.perplexity?.datasetSha256,
  );
  return candidates.find((other) => other.attn === run.attn) ?? candidates[0];
}

export function qualityDelta(run: RunSummary, baseline: RunSummary): QualityDelta | undefined {
  const mine = run.perplexity?.rows;
  const theirs = baseline.perplexity?.rows;
  if (!mine || !theirs) return undefined;
  const units: { a: number; b: number }[] = [];
  let mismatched = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  for (const [key, row] of mine) {
    const base = theirs.get(key);
    if (!base) continue;
    if (base.n_scored_tokens !== row.n_scored_tokens || row.n_scored_tokens <= 0) {
      mismatched += 1;
      continue;
    }
    const delta = row.nll_sum - base.nll_sum;
    units.push({ a: delta, b: row.n_scored_tokens });
    const perToken = Math.abs(delta / row.n_scored_tokens);
    sumAbs += perToken;
    maxAbs = Math.max(maxAbs, perToken);
  }
  if (units.length === 0) return undefined;
  const nllPerToken = ratioEstimate(units);
  return {
    run,
    baseline,
    pairedRows: units.length,
    mismatchedRows: mismatched,
    nllPerToken,
    perplexityRatio: Math.exp(nllPerToken.value),
    meanAbsRowDelta: sumAbs / units.length,
    maxAbsRowDelta: maxAbs,
  };
}

/** Every non-bf16 run that has a bf16 run of the same model on the same rows, compared with it. */
export function qualityDeltas(runs: readonly RunSummary[]): QualityDelta[] {
  const deltas: QualityDelta[] = [];
  for (const run of runs) {
    if (!run.perplexity || (run.quant === BASELINE_QUANT && run.computeDtype === null)) continue;
    const baseline = baselineFor(run, runs);
    const delta = baseline ? qualityDelta(run, baseline) : undefined;
    if (delta) deltas.push(delta);
  }
  return deltas;
}

function signed(value: number, digits: number): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)}`;
}

/** The paired comparison as a report table; undefined when no run has a bf16 baseline on the same rows. */
export function qualityDeltaTable(runs: readonly RunSummary[]): Table | undefined {
  const deltas = qualityDeltas(runs);
  if (deltas.length === 0) return undefined;
  return {
    id: 'quality-vs-bf16',
    title: 'Quality cost vs bf16 (perplexity stage, paired by row)',
    caption:
      'Δ NLL/token = Σ(NLL − NLL_bf16) / Σ tokens over rows scored in both runs (nats; > 0 is worse) ± paired s.e.; ' +
      "ppl ratio = exp(Δ); |Δ| per row = that row's change of mean NLL per token. Rows scored with different token counts are left out.",
    header: ['model', 'precision', 'attention', 'baseline', 'rows', 'Δ NLL/token', 'ppl ratio', 'mean |Δ| per row', 'max |Δ| per row'],
    rows: deltas.map((delta) => [
      shortModel(delta.run.model),
      precisionLabel(delta.run),
      delta.run.attn,
      `bf16 ${delta.baseline.attn}`,
      delta.mismatchedRows > 0 ? `${delta.pairedRows} (${delta.mismatchedRows} left out)` : String(delta.pairedRows),
      `${signed(delta.nllPerToken.value, 5)}${delta.nllPerToken.se === null ? '' : ` ± ${delta.nllPerToken.se.toFixed(5)}`}`,
      delta.perplexityRatio.toFixed(4),
      delta.meanAbsRowDelta.toFixed(5),
      delta.maxAbsRowDelta.toFixed(5),
    ]),
  };
}
