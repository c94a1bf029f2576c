import type { AttentionBackend, DeviceChoice, QuantMode } from '../engine/protocol.js';
import { canonicalJson, sha256Hex } from '../util/canonical-json.js';

export const TASKS = ['perplexity', 'humaneval', 'latency'] as const;
export type Task = (typeof TASKS)[number];
export const STAGES = ['perplexity', 'generate', 'execute', 'latency', 'score', 'report'] as const;
export type Stage = (typeof STAGES)[number];

/** The bigcode-evaluation-harness HumanEval stop list (EOS is added by the engine). */
export const HUMANEVAL_STOP_SEQUENCES = ['\nclass', '\ndef', '\n#', '\n@', '\nprint', '\nif', '\n```', '<file_sep>'];

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
}

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
}

export interface LatencyConfig {
  batches: number[];
  contexts: number[];
  warmup: number;
  iters: number;
  repeats: number;
}

/** Everything that decides a run's results. Its hash names the run and guards resume. */
export interface RunConfig {
  model: string;
  revision: string | undefined;
  quant: QuantMode;
  attn: AttentionBackend;
  computeDtype: 'bf16' | 'fp16' | 'fp32' | undefined;
  device: DeviceChoice;
  /** The batch-invariant engine (--deterministic); undefined: the device's default (on for CPU, off on GPU). */
  deterministic: boolean | undefined;
  seed: number;
  tasks: Task[];
  perplexity: PerplexityConfig;
  humaneval: HumanEvalConfig;
  latency: LatencyConfig;
}

/** Settings that change how a run goes but not its results (never part of the hash). */
export interface RunSettings {
  runDir: string | undefined;
  fresh: boolean;
  stages: Stage[] | undefined;
  concurrency: number;
  /** --batch-size: rows per scoring request and samples decoded together; undefined: each stage's default. */
  batchSize: number | undefined;
  json: boolean;
  verbose: boolean;
}

export function configHash(config: RunConfig): string {
  return sha256Hex(canonicalJson(config));
}

export function defaultRunId(config: RunConfig): string {
  const model = config.model.replace(/^preset:/, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '');
  return `${model.slice(-48)}-${config.quant}-${config.attn}-${configHash(config).slice(0, 10)}`;
}

/** Stages each task needs, in pipeline order. */
export function stagesForTasks(tasks: readonly Task[]): Stage[] {
  const wanted = new Set<Stage>(['score', 'report']);
  if (tasks.includes('perplexity')) wanted.add('perplexity');
  if (tasks.includes('humaneval')) {
    wanted.add('generate');
    wanted.add('execute');
  }
  if (tasks.includes('latency')) wanted.add('latency');
  return STAGES.filter((stage) => wanted.has(stage));
}
