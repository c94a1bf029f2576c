import type { ScoredRow } from '../../backends/engine/protocol.js';
import { recordKind } from '../../pipeline/store/record-kind.js';

/** One scored row of the perplexity texts: the engine's row as it answered (records/perplexity.jsonl). */
export type PerplexityRecord = ScoredRow & { key: string };

export const PERPLEXITY_RECORDS = recordKind<PerplexityRecord>('perplexity', {
  index: 'integer',
  nll_sum: 'number',
  n_scored_tokens: 'integer',
  n_bytes: 'integer',
});

export function rowKey(index: number): string {
  return `row:${index}`;
}
