import { flagBoolean, flagNumber, flagString, nonEmpty, positiveInt, type Flags } from '../../util/option-values.js';
import { UsageError } from '../../util/errors.js';
import type { Windowing } from '../../backends/engine/protocol.js';

export interface PerplexityConfig {
  dataset: string;
  split: string;
  config: string | undefined;
  revision: string | undefined;
  rows: number;
  textField: string | undefined;
  maxLength: number | undefined;
  stride: number | undefined;
  addBos: boolean;
  /**
   * How long rows are cut into windows: undefined is ours (the default, "evalpipe"; left out of the config so
   * runs before the flag keep their hash), "lm-eval" lm-evaluation-harness's rolling loglikelihood.
   */
  windowing?: Windowing | undefined;
}

export const WINDOWINGS: readonly Windowing[] = ['evalpipe', 'lm-eval'];

/** The study's data set and row count: the first 512 rows of flytech/python-codes-25k. */
export const PERPLEXITY_DEFAULTS = { dataset: 'flytech/python-codes-25k', split: 'train', rows: 512 } as const;

export const PERPLEXITY_OPTIONS = {
  dataset: {
    type: 'string',
    describe: `Perplexity texts: hub id, .jsonl/.jsonl.gz/.parquet/.arrow file, or builtin:smoke [default: ${PERPLEXITY_DEFAULTS.dataset}]`,
  },
  split: { type: 'string', describe: `Hub split for --dataset [default: ${PERPLEXITY_DEFAULTS.split}]` },
  'dataset-config': { type: 'string', describe: 'Hub config for --dataset [default: default]' },
  'dataset-revision': { type: 'string', describe: 'Hub revision for --dataset [default: refs/convert/parquet]' },
  rows: { type: 'number', describe: `Score the first N rows [default: ${PERPLEXITY_DEFAULTS.rows}]` },
  'text-field': { type: 'string', describe: 'Column to score, or a template over columns like "{instruction}\\n{output}" [default: the data set spec\'s]' },
  'max-length': { type: 'number', describe: 'Perplexity window in tokens [default: min(model max, 4096)]' },
  stride: { type: 'number', describe: 'Perplexity window advance in tokens [default: --max-length]' },
  bos: { type: 'boolean', describe: 'Prepend BOS as context so every text token is scored [default: true]; --no-bos scores from the second token' },
  windowing: {
    type: 'string',
    describe:
      'Perplexity windows: evalpipe (--max-length tokens with the BOS, advancing by --stride) or lm-eval (as lm-evaluation-harness: --max-length scored tokens per window, the last right-aligned) [default: evalpipe]',
  },
} as const;

export function perplexityConfigFrom(flags: Flags): PerplexityConfig {
  const maxLength = flagNumber(flags, 'max-length');
  const stride = flagNumber(flags, 'stride');
  const config: PerplexityConfig = {
    dataset: nonEmpty(flagString(flags, 'dataset') ?? PERPLEXITY_DEFAULTS.dataset, '--dataset'),
    split: flagString(flags, 'split') ?? PERPLEXITY_DEFAULTS.split,
    config: flagString(flags, 'dataset-config'),
    revision: flagString(flags, 'dataset-revision'),
    rows: positiveInt(flagNumber(flags, 'rows') ?? PERPLEXITY_DEFAULTS.rows, '--rows'),
    textField: flagString(flags, 'text-field'),
    maxLength: maxLength === undefined ? undefined : positiveInt(maxLength, '--max-length'),
    stride: stride === undefined ? undefined : positiveInt(stride, '--stride'),
    addBos: flagBoolean(flags, 'bos') ?? true,
  };
  const windowing = flagString(flags, 'windowing');
  if (windowing !== undefined) {
    if (!(WINDOWINGS as readonly string[]).includes(windowing)) {
      throw new UsageError(`unknown --windowing "${windowing}"`, { hint: `use one of ${WINDOWINGS.join(', ')}` });
    }
    if (windowing === 'lm-eval') {
      if (config.stride !== undefined) {
        throw new UsageError('--stride does not apply to --windowing lm-eval', { hint: 'lm-eval windows advance by --max-length; leave --stride out' });
      }
      if (!config.addBos) {
        throw new UsageError('--no-bos does not apply to --windowing lm-eval', {
          hint: 'lm-eval always scores the first token after its prefix token; leave --no-bos out',
        });
      }
      config.windowing = 'lm-eval';
    }
  }
  if (config.stride !== undefined && config.maxLength !== undefined && config.stride > config.maxLength) {
    throw new UsageError(`--stride (${config.stride}) must not exceed --max-length (${config.maxLength})`, {
      hint: 'a stride larger than the window would skip tokens; use --stride ≤ --max-length',
    });
  }
  return config;
}
