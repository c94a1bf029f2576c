import { flagNumber, flagString, positiveInt, positiveNumber, type Flags } from '../../util/option-values.js';
import { humanEvalConfigFrom } from '../humaneval/config.js';

export type MultiplELanguage = 'js' | 'ts';

/**
 * MultiPL-E's stop tokens for JavaScript and TypeScript (the data set's `stop_tokens` of humaneval-js and
 * humaneval-ts), plus `<file_sep>` as the bigcode harness adds; EOS is added by the engine.
 */
export const MULTIPL_E_STOP_SEQUENCES = ['\nfunction ', '\n/*', '\n//', '\nconsole.log', '<file_sep>'];

/** A candidate's isolate limits unless --js-timeout/--ts-timeout, --js-memory-mb/--ts-memory-mb (run) or --timeout,
 * --memory-mb (execute) say otherwise; output bytes kept per stream. */
export const MULTIPL_E_DEFAULT_TIMEOUT_S = 5;
export const MULTIPL_E_DEFAULT_MEMORY_MB = 256;
export const MULTIPL_E_OUTPUT_BYTES = 16 * 1024;

export interface MultiplEConfig {
  language: MultiplELanguage;
  source: string | undefined;
  limit: number | undefined;
  n: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  stop: string[];
  stripPrompt: boolean;
  /** The engine's sampler (HumanEvalConfig.sampler). */
  sampler?: string | undefined;
  /** Wall-clock limit per candidate in its isolate, seconds. */
  timeoutS: number;
  /** The isolate's memoryLimit, MiB. */
  memoryMb: number;
}

/** The flags of one language's task: the data set file, and the isolate's limits. Sampling (--n, --temperature,
 * --top-p, --max-new-tokens, --limit, --strip-prompt) is shared with humaneval's flags. */
export function multiplEOptions(language: MultiplELanguage) {
  return {
    [`multipl-e-${language}`]: {
      type: 'string',
      describe: `MultiPL-E humaneval-${language} .jsonl (the data set's fields) [default: hub nuprl/MultiPL-E, config humaneval-${language}]`,
    },
    [`${language}-timeout`]: {
      type: 'number',
      describe: `Seconds each ${language === 'js' ? 'JavaScript' : 'TypeScript'} candidate may run in its isolate [default: ${MULTIPL_E_DEFAULT_TIMEOUT_S}]`,
    },
    [`${language}-memory-mb`]: {
      type: 'number',
      describe: `Heap limit of each ${language === 'js' ? 'JavaScript' : 'TypeScript'} candidate's isolate in MiB [default: ${MULTIPL_E_DEFAULT_MEMORY_MB}]`,
    },
  } as const;
}

export function multiplEConfigFrom(language: MultiplELanguage, flags: Flags): MultiplEConfig {
  const sampling = humanEvalConfigFrom({ ...flags, stop: undefined });
  return {
    language,
    source: flagString(flags, `multipl-e-${language}`),
    limit: sampling.limit,
    n: sampling.n,
    temperature: sampling.temperature,
    topP: sampling.topP,
    maxNewTokens: sampling.maxNewTokens,
    stop: MULTIPL_E_STOP_SEQUENCES,
    stripPrompt: sampling.stripPrompt,
    ...(sampling.sampler === undefined ? {} : { sampler: sampling.sampler }),
    timeoutS: positiveNumber(flagNumber(flags, `${language}-timeout`) ?? MULTIPL_E_DEFAULT_TIMEOUT_S, `--${language}-timeout`),
    memoryMb: positiveInt(flagNumber(flags, `${language}-memory-mb`) ?? MULTIPL_E_DEFAULT_MEMORY_MB, `--${language}-memory-mb`),
  };
}
