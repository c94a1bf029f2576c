import type { AttentionBackend, DeviceChoice, QuantMode } from '../backends/engine/protocol.js';
import { TASK_NAMES, type TaskConfigs, type TaskName } from '../tasks/registry.js';
import { canonicalJson, sha256Hex } from '../util/canonical-json.js';
import type { Shard } from './shard.js';

/** The part of the config every run has, whatever its tasks. The whole config's hash names the run and guards resume. */
export interface CommonRunConfig {
  model: string;
  revision: string | undefined;
  quant: QuantMode;
  attn: AttentionBackend;
  computeDtype: 'bf16' | 'fp16' | 'fp32' | undefined;
  /** --model-impl: the engine's own models (native) or HF transformers (hf); absent: auto (native where it can), so
   * runs made before the option existed keep their identity. */
  modelImpl?: 'native' | 'hf' | undefined;
  device: DeviceChoice;
  /** The batch-invariant engine (--deterministic); undefined: the device's default (on for CPU, off on GPU). */
  deterministic: boolean | undefined;
  seed: number;
  tasks: TaskName[];
  /** --backend: the model backend (src/backends/registry.ts); undefined: the default, our engine, so runs made
   * before the option existed keep their identity. */
  backend?: string | undefined;
  /** The backend's own part of the config (its BackendKind.configFrom: --backend openai's base URL, --chat,
   * --tokenizer); absent for a backend without one, so engine runs keep their identity. */
  backendConfig?: Record<string, unknown> | undefined;
}

/** Everything that decides a run's results: the common part, and each registered task's part under its name. */
export type RunConfig = CommonRunConfig & TaskConfigs;

/** Settings that change how a run goes but not its results (never part of the hash). */
export interface RunSettings {
  runDir: string | undefined;
  /** --results-dir: where run directories go when --run-dir does not name one [default: ./results]. */
  resultsDir?: string | undefined;
  fresh: boolean;
  /** --stages: only these stages (by name); undefined: every stage of the run's tasks. */
  stages: string[] | undefined;
  concurrency: number;
  /** --batch-size: rows per scoring request and samples decoded together; undefined: each stage's default. */
  batchSize: number | undefined;
  /** The backend's own settings (its BackendKind.settingsFrom: timeouts, retries, concurrency, the key's variable). */
  backendSettings?: Record<string, unknown> | undefined;
  /** --devices: one engine process per entry (a GPU index, or cpu), the stages' requests shared among them. */
  devices?: string[] | undefined;
  /** The engines' names when `sweep` placed this run on part of its --devices (sweep-placement.ts); else derived from devices. */
  engineLabels?: string[] | undefined;
  /** --shard i/N: only this share of every task's units, into its own run directory (src/pipeline/shard.ts). */
  shard?: Shard | undefined;
  json: boolean;
  verbose: boolean;
}

/**
 * What decides a run's results, the part that is hashed and compared on resume: the common fields and the configs
 * of the run's own tasks. A setting of a task the run does not have (--top-p on a perplexity-only run) is neither
 * hashed nor compared, so it cannot change the run's identity or block its resume.
 */
export function configIdentity(config: RunConfig): Record<string, unknown> {
  const unused = new Set<string>(TASK_NAMES.filter((task) => !config.tasks.includes(task)));
  return Object.fromEntries(Object.entries(config).filter(([key]) => !unused.has(key)));
}

export function configHash(config: RunConfig): string {
  return sha256Hex(canonicalJson(configIdentity(config)));
}

/** The hash before configIdentity (over every task's settings): run directories made then still resume. */
export function legacyConfigHash(config: RunConfig): string {
  return sha256Hex(canonicalJson(config));
}

export function defaultRunId(config: RunConfig): string {
  const model = config.model
    .replace(/^preset:/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return `${model.slice(-48)}-${config.quant}-${config.attn}-${configHash(config).slice(0, 10)}`;
}
