import { recordKind } from '../../pipeline/store/record-kind.js';

/** One cell of the latency matrix: batch × context for the run's precision and attention. */
export interface LatencyCell {
  model: string;
  quant: string;
  attn: string;
  batch: number;
  ctx: number;
  status: 'ok' | 'oom';
  seconds_per_minibatch: number | null;
  tokens_per_s: number | null;
  peak_gib: number | null;
}

/** records/latency.jsonl: a cell and the time of every timed minibatch it took. */
export type LatencyRecord = LatencyCell & { key: string; times: number[] };

export const LATENCY_RECORDS = recordKind<LatencyRecord>('latency', {
  batch: 'integer',
  ctx: 'integer',
  status: 'string',
  seconds_per_minibatch: 'number|null',
  tokens_per_s: 'number|null',
  peak_gib: 'number|null',
});

export function latencyKey(quant: string, attn: string, batch: number, ctx: number): string {
  return `lat:${quant}:${attn}:${batch}x${ctx}`;
}
