import type { Argv } from 'yargs';
import { DEFAULT_API_KEY_ENV, normalizeBaseUrl } from '../../backends/openai/openai-options.js';
import { benchmarkPrompts, PROMPT_SOURCES, type PromptSource } from '../../serving-bench/serving-prompts.js';
import { runServingBench } from '../../serving-bench/run-serving-bench.js';
import { formatServingTable } from '../../serving-bench/serving-table.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { UsageError } from '../../util/errors.js';
import { nonEmpty, parseIntList, positiveInt, positiveNumber } from '../../util/option-values.js';
import { withInterrupt } from '../with-interrupt.js';

/** The serving benchmark's defaults (after vLLM's benchmark_serving): concurrency 1, 8, 64; 256 tokens each. */
export const SERVING_DEFAULTS = { concurrency: '1,8,64', maxTokens: 256, inputWords: 256, requestTimeoutS: 600 } as const;

export interface ServingBenchArgs {
  model: string;
  'base-url'?: string;
  'api-key-env'?: string;
  'serving-concurrency'?: string;
  requests?: number;
  'max-tokens'?: number;
  prompts?: string;
  'input-words'?: number;
  humaneval?: string;
  'ignore-eos'?: boolean;
  'request-timeout'?: number;
  output?: string;
  json: boolean;
}

/** `bench --backend openai`'s own flags. */
export function servingBenchOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option('base-url', { type: 'string', describe: '--backend openai: the server, e.g. http://127.0.0.1:8000/v1' })
    .option('api-key-env', { type: 'string', describe: `--backend openai: the variable holding the API key [default: ${DEFAULT_API_KEY_ENV}]` })
    .option('serving-concurrency', {
      type: 'string',
      describe: `--backend openai: requests in flight, a comma list, one level each [default: ${SERVING_DEFAULTS.concurrency}]`,
    })
    .option('requests', { type: 'number', describe: '--backend openai: requests per level [default: max(32, 4 × concurrency)]' })
    .option('max-tokens', { type: 'number', describe: `--backend openai: output tokens per request [default: ${SERVING_DEFAULTS.maxTokens}]` })
    .option('prompts', {
      type: 'string',
      choices: [...PROMPT_SOURCES],
      describe: '--backend openai: HumanEval prompts or synthetic ones of --input-words [default: humaneval]',
    })
    .option('input-words', { type: 'number', describe: `--backend openai: words per synthetic prompt [default: ${SERVING_DEFAULTS.inputWords}]` })
    .option('humaneval', { type: 'string', describe: '--backend openai: HumanEval.jsonl(.gz) for the prompts [default: the hub data set]' })
    .option('ignore-eos', { type: 'boolean', describe: '--backend openai: send ignore_eos so every request makes --max-tokens (vLLM, ours) [default: true]' })
    .option('request-timeout', { type: 'number', describe: `--backend openai: seconds per request [default: ${SERVING_DEFAULTS.requestTimeoutS}]` });
}

export async function runServingBenchCommand(args: ServingBenchArgs): Promise<void> {
  if (args['base-url'] === undefined)
    throw new UsageError('bench --backend openai needs --base-url: the server to time', { hint: 'e.g. --base-url http://127.0.0.1:8000/v1' });
  const baseUrl = normalizeBaseUrl(args['base-url']);
  const keyEnv = args['api-key-env'] ?? DEFAULT_API_KEY_ENV;
  const concurrencies = parseIntList(args['serving-concurrency'] ?? SERVING_DEFAULTS.concurrency, '--serving-concurrency');
  for (const concurrency of concurrencies) positiveInt(concurrency, '--serving-concurrency');
  const source = (args.prompts ?? 'humaneval') as PromptSource;
  const timeoutMs = Math.round(positiveNumber(args['request-timeout'] ?? SERVING_DEFAULTS.requestTimeoutS, '--request-timeout') * 1000);
  const maxTokens = positiveInt(args['max-tokens'] ?? SERVING_DEFAULTS.maxTokens, '--max-tokens');
  const requests = args.requests === undefined ? undefined : positiveInt(args.requests, '--requests');
  const model = nonEmpty(args.model, '--model');
  const words = positiveInt(args['input-words'] ?? SERVING_DEFAULTS.inputWords, '--input-words');
  const { header, levels } = await withInterrupt(async (signal) =>
    runServingBench({
      baseUrl,
      apiKey: process.env[keyEnv] || undefined,
      model,
      maxTokens,
      ignoreEos: args['ignore-eos'] ?? true,
      temperature: 0,
      timeoutMs,
      concurrencies,
      requests,
      loadPrompts: () => benchmarkPrompts(source, { humaneval: args.humaneval, words, count: 64, signal }),
      promptSource: source,
      signal,
      onLevel: (level) => {
        if (args.json) process.stdout.write(`${JSON.stringify(level)}\n`);
        else
          process.stderr.write(
            `bench: concurrency ${level.concurrency} done (${level.completed} ok, ${level.failed} failed, ${level.duration_s.toFixed(1)} s)\n`,
          );
      },
    }),
  );
  if (args.output) await writeJsonAtomic(args.output, { header, levels });
  if (!args.json) process.stdout.write(`${formatServingTable(levels)}\n`);
}
