import { DEFAULTS, commaList } from '../../pipeline/defaults.js';
import { flagNumber, flagString, nonNegativeInt, parseIntList, positiveInt, type Flags } from '../../util/option-values.js';

export interface LatencyConfig {
  batches: number[];
  contexts: number[];
  warmup: number;
  iters: number;
  repeats: number;
}

export const LATENCY_OPTIONS = {
  batches: { type: 'string', describe: `Latency batch sizes [default: ${commaList(DEFAULTS.latency.batches)}]` },
  contexts: { type: 'string', describe: `Latency context lengths [default: ${commaList(DEFAULTS.latency.contexts)}]` },
  warmup: { type: 'number', describe: `Latency warm-up minibatches [default: ${DEFAULTS.latency.warmup}]` },
  iters: { type: 'number', describe: `Latency timed minibatches per repeat [default: ${DEFAULTS.latency.iters}]` },
  repeats: { type: 'number', describe: `Latency repeats [default: ${DEFAULTS.latency.repeats}]` },
} as const;

export function latencyConfigFrom(flags: Flags): LatencyConfig {
  return {
    batches: parseIntList(flagString(flags, 'batches') ?? commaList(DEFAULTS.latency.batches), '--batches'),
    contexts: parseIntList(flagString(flags, 'contexts') ?? commaList(DEFAULTS.latency.contexts), '--contexts'),
    warmup: nonNegativeInt(flagNumber(flags, 'warmup') ?? DEFAULTS.latency.warmup, '--warmup'),
    iters: positiveInt(flagNumber(flags, 'iters') ?? DEFAULTS.latency.iters, '--iters'),
    repeats: positiveInt(flagNumber(flags, 'repeats') ?? DEFAULTS.latency.repeats, '--repeats'),
  };
}
