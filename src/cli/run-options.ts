import { availableParallelism } from 'node:os';
import type { Argv } from 'yargs';
import { ATTENTION_BACKENDS, QUANT_MODES, type AttentionBackend, type DeviceChoice, type QuantMode } from '../engine/protocol.js';
import {
  HUMANEVAL_STOP_SEQUENCES,
  STAGES,
  TASKS,
  type RunConfig,
  type RunSettings,
  type Stage,
  type Task,
} from '../pipeline/run-config.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES } from '../tasks/humaneval/generate-stage.js';
import { DEFAULT_SCORE_BATCH_ROWS } from '../tasks/perplexity/stage.js';
import { UsageError } from '../util/errors.js';
import { VERDICTS_OPTION, parseVerdictMode } from './verdicts-option.js';
import { DEFAULTS, commaList, defaultQuant } from '../pipeline/defaults.js';

/** Named starting points; explicit flags override them. */
export const PRESETS: Record<string, Partial<RawRunOptions>> = {
  smoke: {
    model: 'preset:tiny-starcoder2',
    device: 'cpu',
    quant: 'fp32',
    attn: 'sdpa',
    tasks: 'perplexity',
    dataset: 'builtin:smoke',
    rows: 24,
  },
};

export interface RawRunOptions {
  preset?: string;
  model?: string;
  revision?: string;
  quant?: string;
  attn?: string;
  'compute-dtype'?: string;
  device?: string;
  seed?: number;
  tasks?: string;
  stages?: string;
  dataset?: string;
  split?: string;
  'dataset-config'?: string;
  'dataset-revision'?: string;
  rows?: number;
  'text-field'?: string;
  'max-length'?: number;
  stride?: number;
  bos?: boolean;
  humaneval?: string;
  limit?: number;
  n?: number;
  temperature?: number;
  'top-p'?: number;
  'max-new-tokens'?: number;
  stop?: string[];
  'strip-prompt'?: boolean;
  timeout?: number;
  'memory-mb'?: number;
  batches?: string;
  contexts?: string;
  warmup?: number;
  iters?: number;
  repeats?: number;
  'run-dir'?: string;
  fresh?: boolean;
  concurrency?: number;
  'batch-size'?: number;
  deterministic?: boolean;
  verdicts?: string;
  json?: boolean;
  verbose?: boolean;
}

export function addRunOptions<T>(cli: Argv<T>): Argv<T> {
  return cli
    .option('preset', { type: 'string', choices: Object.keys(PRESETS), describe: 'Start from a preset: `smoke` = tiny random model, built-in texts, CPU, no network' })
    .option('model', { type: 'string', describe: 'Hub id (bigcode/starcoder2-3b), local HF directory, or preset:tiny-starcoder2 [default: bigcode/starcoder2-3b]' })
    .option('revision', { type: 'string', describe: 'Model revision (branch, tag or commit) for hub ids' })
    .option('quant', { type: 'string', choices: [...QUANT_MODES], describe: 'Precision: weights and compute [default: bf16 on GPU, fp32 on CPU]' })
    .option('attn', { type: 'string', choices: [...ATTENTION_BACKENDS], describe: 'Attention backend [default: sdpa]' })
    .option('compute-dtype', { type: 'string', choices: ['bf16', 'fp16', 'fp32'], describe: 'Compute dtype for quantized modes (nf4 with fp32 compute, ...)' })
    .option('device', { type: 'string', choices: ['auto', 'cpu', 'cuda'], describe: 'Where the engine runs [default: auto]' })
    .option('seed', { type: 'number', describe: 'Seed for sampling, random presets and benchmarks [default: 1234]' })
    .option('tasks', { type: 'string', describe: `Comma list of ${TASKS.join(', ')} [default: perplexity,humaneval]` })
    .option('stages', { type: 'string', describe: `Run only these stages (${STAGES.join(', ')}), e.g. generate on a GPU box, then execute,score,report elsewhere` })
    .option('dataset', { type: 'string', describe: 'Perplexity texts: hub id, .jsonl/.jsonl.gz/.parquet/.arrow file, or builtin:smoke [default: flytech/python-codes-25k]' })
    .option('split', { type: 'string', describe: 'Hub split for --dataset [default: train]' })
    .option('dataset-config', { type: 'string', describe: 'Hub config for --dataset [default: default]' })
    .option('dataset-revision', { type: 'string', describe: 'Hub revision for --dataset [default: refs/convert/parquet]' })
    .option('rows', { type: 'number', describe: 'Score the first N rows [default: 512]' })
    .option('text-field', { type: 'string', describe: 'Column to score, or a template over columns like "{instruction}\\n{output}" [default: the data set spec\'s]' })
    .option('max-length', { type: 'number', describe: 'Perplexity window in tokens [default: min(model max, 4096)]' })
    .option('stride', { type: 'number', describe: 'Perplexity window advance in tokens [default: --max-length]' })
    .option('bos', { type: 'boolean', describe: 'Prepend BOS as context so every text token is scored [default: true]; --no-bos scores from the second token' })
    .option('humaneval', { type: 'string', describe: 'HumanEval .jsonl/.jsonl.gz in the original format [default: hub openai/openai_humaneval]' })
    .option('limit', { type: 'number', describe: 'Only the first N HumanEval problems' })
    .option('n', { type: 'number', describe: 'Samples per HumanEval problem [default: 1 (greedy)]' })
    .option('temperature', { type: 'number', describe: 'Sampling temperature; 0 = greedy [default: 0 when n=1, else 0.2]' })
    .option('top-p', { type: 'number', describe: 'Nucleus sampling p [default: 0.95]' })
    .option('max-new-tokens', { type: 'number', describe: 'Tokens generated per sample [default: 512]' })
    .option('stop', { type: 'string', array: true, describe: 'Stop sequences (replaces the bigcode HumanEval list)' })
    .option('strip-prompt', { type: 'boolean', describe: 'Strip leading and trailing whitespace from prompts before generating, as the bigcode harness does [default: true]' })
    .option('timeout', { type: 'number', describe: 'Seconds each candidate may run in the sandbox [default: 3]' })
    .option('memory-mb', { type: 'number', describe: 'Memory limit per candidate process in MB [default: 1024]' })
    .option('batches', { type: 'string', describe: 'Latency batch sizes [default: 2,4,8]' })
    .option('contexts', { type: 'string', describe: 'Latency context lengths [default: 4096,8192,16384]' })
    .option('warmup', { type: 'number', describe: 'Latency warm-up minibatches [default: 2]' })
    .option('iters', { type: 'number', describe: 'Latency timed minibatches per repeat [default: 4]' })
    .option('repeats', { type: 'number', describe: 'Latency repeats [default: 4]' })
    .option('run-dir', { type: 'string', describe: 'Run directory [default: results/<run-id>, named by the config hash so the same command resumes]' })
    .option('fresh', { type: 'boolean', default: false, describe: 'Discard what the run directory holds and start over' })
    .option('concurrency', { type: 'number', describe: 'Sandbox executions at once [default: number of cores]' })
    .option('verdicts', VERDICTS_OPTION)
    .option('batch-size', {
      type: 'number',
      describe: `Rows per scoring request and samples decoded together; not part of the run's identity (changing it resumes the same run) [default: ${DEFAULT_SCORE_BATCH_ROWS} rows, ${DEFAULT_GENERATE_BATCH_SAMPLES} samples]`,
    })
    .option('deterministic', {
      type: 'boolean',
      describe: 'Batch-invariant engine: a row\'s log-probs and a sample\'s tokens do not depend on the batch size or on what shares the batch (--no-deterministic: the fast path) [default: on for CPU, off on GPU]',
    });
}

export function buildRunConfig(raw: RawRunOptions): { config: RunConfig; settings: RunSettings } {
  const preset = raw.preset ? PRESETS[raw.preset] : {};
  if (raw.preset && !preset) throw new UsageError(`unknown preset ${raw.preset}`, { hint: `use one of ${Object.keys(PRESETS).join(', ')}` });
  const options: RawRunOptions = { ...preset, ...definedOnly(raw) };
  const device = (options.device ?? 'auto') as DeviceChoice;
  const quant = (options.quant ?? defaultQuant(device)) as QuantMode;
  const n = positiveInt(options.n ?? 1, '--n');
  const temperature = options.temperature ?? (n === 1 ? 0 : 0.2);
  if (!(temperature >= 0)) throw new UsageError(`--temperature must be ≥ 0, got ${temperature}`, { hint: 'use 0 for greedy decoding' });
  if (temperature === 0 && n > 1) {
    throw new UsageError(`greedy decoding (--temperature 0) makes one sample per problem, but -n is ${n}`, {
      hint: 'use -n 1 for greedy pass@1, or a temperature above 0 (e.g. --temperature 0.2) for n samples',
    });
  }
  const topP = options['top-p'] ?? 0.95;
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`, { hint: 'use e.g. --top-p 0.95' });
  const config: RunConfig = {
    model: nonEmpty(options.model ?? DEFAULTS.model, '--model'),
    revision: options.revision,
    quant,
    attn: (options.attn ?? DEFAULTS.attn) as AttentionBackend,
    computeDtype: options['compute-dtype'] as RunConfig['computeDtype'],
    device,
    deterministic: options.deterministic,
    seed: int(options.seed ?? DEFAULTS.seed, '--seed'),
    tasks: parseList(options.tasks ?? 'perplexity,humaneval', TASKS, '--tasks') as Task[],
    perplexity: {
      dataset: nonEmpty(options.dataset ?? 'flytech/python-codes-25k', '--dataset'),
      split: options.split ?? 'train',
      config: options['dataset-config'],
      revision: options['dataset-revision'],
      rows: positiveInt(options.rows ?? 512, '--rows'),
      textField: options['text-field'],
      maxLength: options['max-length'] === undefined ? undefined : positiveInt(options['max-length'], '--max-length'),
      stride: options.stride === undefined ? undefined : positiveInt(options.stride, '--stride'),
      addBos: options.bos ?? true,
    },
    humaneval: {
      source: options.humaneval,
      limit: options.limit === undefined ? undefined : positiveInt(options.limit, '--limit'),
      n,
      temperature,
      topP,
      maxNewTokens: positiveInt(options['max-new-tokens'] ?? 512, '--max-new-tokens'),
      stop: options.stop ?? HUMANEVAL_STOP_SEQUENCES,
      stripPrompt: options['strip-prompt'] ?? true,
      timeoutS: positiveNumber(options.timeout ?? 3, '--timeout'),
      memoryMb: positiveInt(options['memory-mb'] ?? 1024, '--memory-mb'),
      verdicts: parseVerdictMode(options.verdicts) === 'isolated' ? 'isolated' : undefined,
    },
    latency: {
      batches: parseIntList(options.batches ?? commaList(DEFAULTS.latency.batches), '--batches'),
      contexts: parseIntList(options.contexts ?? commaList(DEFAULTS.latency.contexts), '--contexts'),
      warmup: nonNegativeInt(options.warmup ?? DEFAULTS.latency.warmup, '--warmup'),
      iters: positiveInt(options.iters ?? DEFAULTS.latency.iters, '--iters'),
      repeats: positiveInt(options.repeats ?? DEFAULTS.latency.repeats, '--repeats'),
    },
  };
  if (config.perplexity.stride !== undefined && config.perplexity.maxLength !== undefined && config.perplexity.stride > config.perplexity.maxLength) {
    throw new UsageError(`--stride (${config.perplexity.stride}) must not exceed --max-length (${config.perplexity.maxLength})`, {
      hint: 'a stride larger than the window would skip tokens; use --stride ≤ --max-length',
    });
  }
  const settings: RunSettings = {
    runDir: options['run-dir'],
    fresh: options.fresh ?? false,
    stages: options.stages === undefined ? undefined : (parseList(options.stages, STAGES, '--stages') as Stage[]),
    concurrency: positiveInt(options.concurrency ?? availableParallelism(), '--concurrency'),
    batchSize: options['batch-size'] === undefined ? undefined : batchSize(options['batch-size']),
    json: options.json ?? false,
    verbose: options.verbose ?? false,
  };
  return { config, settings };
}

function definedOnly(raw: RawRunOptions): Partial<RawRunOptions> {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined)) as Partial<RawRunOptions>;
}

function nonEmpty(value: string, flag: string): string {
  if (value.trim() === '') throw new UsageError(`${flag} is empty`, { hint: `give ${flag} a value` });
  return value;
}

function int(value: number, flag: string): number {
  if (!Number.isInteger(value)) throw new UsageError(`${flag} must be a whole number, got ${value}`, { hint: `e.g. ${flag} 1` });
  return value;
}

function positiveInt(value: number, flag: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new UsageError(`${flag} must be a positive whole number, got ${String(value)}`, { hint: `e.g. ${flag} ${flag === '--rows' ? 512 : 1}` });
  }
  return value;
}

/** The most rows or samples one batch may hold: beyond it a request would not fit any card's memory. */
export const MAX_BATCH_SIZE = 4096;

/** --batch-size: a whole number in [1, MAX_BATCH_SIZE]. */
export function batchSize(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_BATCH_SIZE) {
    throw new UsageError(`--batch-size must be a whole number from 1 to ${MAX_BATCH_SIZE}, got ${String(value)}`, {
      hint: `e.g. --batch-size ${DEFAULT_SCORE_BATCH_ROWS} (rows per scoring request; samples decoded together)`,
    });
  }
  return value;
}

function nonNegativeInt(value: number, flag: string): number {
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`${flag} must be a whole number ≥ 0, got ${String(value)}`, { hint: `e.g. ${flag} 2` });
  return value;
}

function positiveNumber(value: number, flag: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new UsageError(`${flag} must be a positive number, got ${String(value)}`, { hint: `e.g. ${flag} 3` });
  return value;
}

function parseList<T extends string>(text: string, allowed: readonly T[], flag: string): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw new UsageError(`${flag} is empty`, { hint: `use some of ${allowed.join(', ')}` });
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`${flag}: unknown value "${item}"`, { hint: `use some of ${allowed.join(', ')}` });
  }
  return allowed.filter((item) => items.includes(item));
}

/** A comma list of positive whole numbers (`--batches 2,4,8`). */
export function parseIntList(text: string, flag: string): number[] {
  const values = text.split(',').map((item) => Number(item.trim()));
  if (values.length === 0 || values.some((value) => !Number.isInteger(value) || value <= 0)) {
    throw new UsageError(`${flag} must be a comma list of positive whole numbers, got "${text}"`, { hint: `e.g. ${flag} 2,4,8` });
  }
  return values;
}
