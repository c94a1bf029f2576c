import { flagNumber, flagString, flagStrings, positiveNumber, type Flags } from '../../util/option-values.js';
import { humanEvalConfigFrom, type HumanEvalConfig } from '../humaneval/config.js';

/** evalplus's defaults (evalplus/config.py): DEFAULT_MIN_TIME_LIMIT and DEFAULT_GT_TIME_LIMIT_FACTOR. */
export const DEFAULT_MIN_TIME_LIMIT_S = 1.0;
export const DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0;

/** The config of an evalplus-style task: humaneval's sampling flags (--n, --limit, --temperature, ...) and its own. */
export interface PlusConfig {
  source: string | undefined;
  /** humaneval-plus only: where the base tests (the original HumanEval's) come from (--humaneval). */
  baseSource?: string | undefined;
  limit: number | undefined;
  n: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  stop: string[];
  stripPrompt: boolean;
  memoryMb: number;
  minTimeLimitS: number;
  gtTimeLimitFactor: number;
}

/** Flags every evalplus-style task shares (declared once, by whichever task comes first in the registry). */
export const PLUS_TIME_OPTIONS = {
  'min-time-limit': {
    type: 'number',
    describe: `humaneval-plus/mbpp-plus: the least seconds a test may take (evalplus --min-time-limit) [default: ${DEFAULT_MIN_TIME_LIMIT_S}]`,
  },
  'gt-time-limit-factor': {
    type: 'number',
    describe: `humaneval-plus/mbpp-plus: a test's limit is this × the canonical solution's time on it (evalplus --gt-time-limit-factor) [default: ${DEFAULT_GT_TIME_LIMIT_FACTOR}]`,
  },
} as const;

/** The task's config from the flags: `sourceFlag` names its data file flag, `defaultStop` its stop list. */
export function plusConfigFrom(flags: Flags, sourceFlag: string, defaultStop: readonly string[], baseSourceFlag?: string): PlusConfig {
  const shared: HumanEvalConfig = humanEvalConfigFrom(flags);
  return {
    source: flagString(flags, sourceFlag),
    ...(baseSourceFlag ? { baseSource: flagString(flags, baseSourceFlag) } : {}),
    limit: shared.limit,
    n: shared.n,
    temperature: shared.temperature,
    topP: shared.topP,
    maxNewTokens: shared.maxNewTokens,
    stop: flagStrings(flags, 'stop') ?? [...defaultStop],
    stripPrompt: shared.stripPrompt,
    memoryMb: shared.memoryMb,
    minTimeLimitS: positiveNumber(flagNumber(flags, 'min-time-limit') ?? DEFAULT_MIN_TIME_LIMIT_S, '--min-time-limit'),
    gtTimeLimitFactor: positiveNumber(flagNumber(flags, 'gt-time-limit-factor') ?? DEFAULT_GT_TIME_LIMIT_FACTOR, '--gt-time-limit-factor'),
  };
}
