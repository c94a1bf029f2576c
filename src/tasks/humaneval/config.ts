import { UsageError } from '../../util/errors.js';
import { flagBoolean, flagNumber, flagString, flagStrings, positiveInt, positiveNumber, type Flags } from '../../util/option-values.js';
import { VERDICTS_OPTION, parseVerdictMode } from './verdicts-option.js';

/** The bigcode-evaluation-harness HumanEval stop list (EOS is added by the engine). */
export const HUMANEVAL_STOP_SEQUENCES = ['\nclass', '\ndef', '\n#', '\n@', '\nprint', '\nif', '\n```', '<file_sep>'];

export interface HumanEvalConfig {
  source: string | undefined;
  limit: number | undefined;
  n: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  stop: string[];
  /** Strip trailing whitespace/newlines from prompts before generation (bigcode harness does `prompt.strip()`). */
  stripPrompt: boolean;
  timeoutS: number;
  memoryMb: number;
  /** `isolated` (--verdicts isolated): the verdict counted is made with the tests in their own process. Left out
   * (undefined) for the default mode, so runs made before the option existed keep their identity. */
  verdicts?: 'isolated' | undefined;
  /** The engine's sampler the samples are drawn with (temperature > 0 on our engine; GENERATE_SAMPLER): part of
   * the run's identity, so a run is never resumed with another sampler's samples. Absent when greedy or served by
   * --backend openai (the server samples). */
  sampler?: string | undefined;
}

/** The engine's sampler (cuda/evalpipe_engine/sampling.py SAMPLER; a test pins the two equal). Version 2 draws from
 * counter-based uniforms on the GPU; version 1 (runs without a `sampler` field) drew from CPU generators. */
export const GENERATE_SAMPLER = 'counter-splitmix64-v2';

export const HUMANEVAL_OPTIONS = {
  humaneval: { type: 'string', describe: 'HumanEval .jsonl/.jsonl.gz in the original format [default: hub openai/openai_humaneval]' },
  limit: { type: 'number', describe: 'Only the first N HumanEval problems' },
  n: { type: 'number', describe: 'Samples per HumanEval problem [default: 1 (greedy)]' },
  temperature: { type: 'number', describe: 'Sampling temperature; 0 = greedy [default: 0 when n=1, else 0.2]' },
  'top-p': { type: 'number', describe: 'Nucleus sampling p [default: 0.95]' },
  'max-new-tokens': { type: 'number', describe: 'Tokens generated per sample [default: 512]' },
  stop: { type: 'string', array: true, describe: 'Stop sequences (replaces the bigcode HumanEval list)' },
  'strip-prompt': {
    type: 'boolean',
    describe: 'Strip leading and trailing whitespace from prompts before generating, as the bigcode harness does [default: true]',
  },
  timeout: { type: 'number', describe: 'Seconds each candidate may run in the sandbox [default: 3]' },
  'memory-mb': { type: 'number', describe: 'Memory limit per candidate process in MB [default: 1024]' },
  verdicts: VERDICTS_OPTION,
} as const;

export function humanEvalConfigFrom(flags: Flags): HumanEvalConfig {
  const n = positiveInt(flagNumber(flags, 'n') ?? 1, '--n');
  const temperature = flagNumber(flags, 'temperature') ?? (n === 1 ? 0 : 0.2);
  if (!(temperature >= 0)) throw new UsageError(`--temperature must be ≥ 0, got ${temperature}`, { hint: 'use 0 for greedy decoding' });
  if (temperature === 0 && n > 1) {
    throw new UsageError(`greedy decoding (--temperature 0) makes one sample per problem, but -n is ${n}`, {
      hint: 'use -n 1 for greedy pass@1, or a temperature above 0 (e.g. --temperature 0.2) for n samples',
    });
  }
  const topP = flagNumber(flags, 'top-p') ?? 0.95;
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`, { hint: 'use e.g. --top-p 0.95' });
  const limit = flagNumber(flags, 'limit');
  return {
    source: flagString(flags, 'humaneval'),
    limit: limit === undefined ? undefined : positiveInt(limit, '--limit'),
    n,
    temperature,
    topP,
    maxNewTokens: positiveInt(flagNumber(flags, 'max-new-tokens') ?? 512, '--max-new-tokens'),
    stop: flagStrings(flags, 'stop') ?? HUMANEVAL_STOP_SEQUENCES,
    stripPrompt: flagBoolean(flags, 'strip-prompt') ?? true,
    timeoutS: positiveNumber(flagNumber(flags, 'timeout') ?? 3, '--timeout'),
    memoryMb: positiveInt(flagNumber(flags, 'memory-mb') ?? 1024, '--memory-mb'),
    verdicts: parseVerdictMode(flagString(flags, 'verdicts')) === 'isolated' ? 'isolated' : undefined,
    sampler: temperature > 0 && flagString(flags, 'backend') !== 'openai' ? GENERATE_SAMPLER : undefined,
  };
}
