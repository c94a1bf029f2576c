import { availableParallelism } from 'node:os';
import type { Argv } from 'yargs';
import { ATTENTION_BACKENDS, QUANT_MODES, type DeviceChoice } from '../backends/engine/protocol.js';
import { BACKEND_NAMES, BACKEND_REGISTRY, DEFAULT_BACKEND, backendNamed } from '../backends/registry.js';
import type { CommonRunConfig, RunConfig, RunSettings } from '../pipeline/run-config.js';
import { SCORING_STAGES, STAGE_NAMES, stagesForTasks } from '../pipeline/stages.js';
import { parseShard, SHARDABLE_TASKS, type Shard } from '../pipeline/shard.js';
import { parseDevices } from '../pipeline/engines/engine-devices.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES } from '../tasks/humaneval/generate-stage.js';
import { DEFAULT_SCORE_BATCH_ROWS } from '../tasks/perplexity/stage.js';
import { TASK_NAMES, TASK_REGISTRY, type TaskConfigs } from '../tasks/registry.js';
import { UsageError } from '../util/errors.js';
import { int, nonEmpty, parseChoiceList, positiveInt, type Flags } from '../util/option-values.js';
import { DEFAULTS, DEVICE_DEFAULTS_HELP, deviceDefaults } from '../pipeline/defaults.js';

/** Named starting points; explicit flags override them. */
export const PRESETS: Record<string, Partial<RawRunOptions>> = {
  smoke: {
    /** Trained weights (cuda/evalpipe_engine/trained/): a perplexity that means something; preset:tiny-starcoder2 stays random. */
    model: 'preset:trained-tiny-starcoder2',
    device: 'cpu',
    quant: 'fp32',
    attn: 'sdpa',
    tasks: 'perplexity',
    dataset: 'builtin:smoke',
    rows: 24,
  },
};

/** The flags of `run` and `sweep`: the common ones typed here; each task reads its own from the rest. */
export interface RawRunOptions {
  preset?: string;
  model?: string;
  revision?: string;
  quant?: string;
  attn?: string;
  'compute-dtype'?: string;
  'model-impl'?: string;
  device?: string;
  seed?: number;
  tasks?: string;
  stages?: string;
  'run-dir'?: string;
  'results-dir'?: string;
  fresh?: boolean;
  concurrency?: number;
  'batch-size'?: number;
  deterministic?: boolean;
  json?: boolean;
  verbose?: boolean;
  backend?: string;
  shard?: string;
  devices?: string;
  /** A task's own flags (src/tasks/<task>/config.ts). */
  [flag: string]: unknown;
}

/** The tasks a run has when --tasks is not given. */
const DEFAULT_TASKS = 'perplexity,humaneval';

/**
 * The run options: the common ones here, then each registered task's own (src/tasks/<task>/config.ts), then each
 * registered backend's own (BackendKind.options, e.g. src/backends/openai/openai-options.ts).
 */
export function addRunOptions<T>(cli: Argv<T>): Argv<T> {
  let withTasks = commonRunOptions(cli);
  for (const task of TASK_REGISTRY) {
    for (const [flag, option] of Object.entries(task.options)) withTasks = withTasks.option(flag, option);
  }
  for (const backend of BACKEND_REGISTRY) {
    for (const [flag, option] of Object.entries(backend.options ?? {})) withTasks = withTasks.option(flag, option);
  }
  return withTasks;
}

function commonRunOptions<T>(cli: Argv<T>): Argv<T> {
  return cli
    .option('preset', {
      type: 'string',
      choices: Object.keys(PRESETS),
      describe: 'Start from a preset: `smoke` = tiny random model, built-in texts, CPU, no network',
    })
    .option('model', {
      type: 'string',
      describe: 'Hub id (bigcode/starcoder2-3b), local HF directory, or preset:tiny-starcoder2 [default: bigcode/starcoder2-3b]',
    })
    .option('revision', { type: 'string', describe: 'Model revision (branch, tag or commit) for hub ids' })
    .option('quant', {
      type: 'string',
      describe: `Precision (${QUANT_MODES.join(', ')}), or a comma list: one run per precision × attention, then one report [default: ${DEVICE_DEFAULTS_HELP}]`,
    })
    .option('attn', { type: 'string', describe: `Attention backend (${ATTENTION_BACKENDS.join(', ')}), or a comma list [default: ${DEVICE_DEFAULTS_HELP}]` })
    .option('compute-dtype', { type: 'string', choices: ['bf16', 'fp16', 'fp32'], describe: 'Compute dtype for quantized modes (nf4 with fp32 compute, ...)' })
    .option('model-impl', {
      type: 'string',
      choices: ['auto', 'native', 'hf'],
      describe:
        'Which engine code runs the model: native (our models: StarCoder2, Llama, Qwen2, Mistral; refuses others), hf (HF transformers), auto: native where it can [default: auto]',
    })
    .option('device', {
      type: 'string',
      choices: ['auto', 'cpu', 'cuda'],
      describe: 'Where the engine runs; auto: a GPU when torch can use one, else the CPU [default: auto]',
    })
    .option('seed', { type: 'number', describe: 'Seed for sampling, random presets and benchmarks [default: 1234]' })
    .option('backend', { type: 'string', choices: [...BACKEND_NAMES], describe: `Model backend [default: ${DEFAULT_BACKEND}]` })
    .option('tasks', { type: 'string', describe: `Comma list of ${TASK_NAMES.join(', ')} [default: ${DEFAULT_TASKS}]` })
    .option('stages', {
      type: 'string',
      describe: `Run only these stages (${STAGE_NAMES.join(', ')}), e.g. generate on a GPU box, then execute,score,report elsewhere`,
    })
    .option('run-dir', {
      type: 'string',
      describe: 'Run directory of a single run [default: <results-dir>/<run-id>, named by the config hash so the same command resumes]',
    })
    .option('results-dir', { type: 'string', describe: 'Where run directories go (one per precision × attention) [default: ./results]' })
    .option('fresh', { type: 'boolean', default: false, describe: 'Discard what the run directory holds and start over' })
    .option('concurrency', { type: 'number', describe: 'Sandbox executions at once [default: number of cores]' })
    .option('batch-size', {
      type: 'number',
      describe: `Rows per scoring request and samples decoded together; not part of the run's identity (changing it resumes the same run) [default: ${DEFAULT_SCORE_BATCH_ROWS} rows, ${DEFAULT_GENERATE_BATCH_SAMPLES} samples]`,
    })
    .option('devices', {
      type: 'string',
      describe:
        "One engine process per entry, each loading the model once, the stages' requests shared among them: GPU indices (0,1,2,3), all (every GPU), or cpu,cpu (several CPU engines); with several --quant/--attn values the combinations run side by side, each on its own entries; not part of the run's identity [default: one engine]",
    })
    .option('shard', {
      type: 'string',
      describe:
        "i/N: this machine's fixed share of every task's units (by a hash of each unit's key), into its own run directory; the work stages only: `evalpipe merge` joins the N shards and scores them",
    })
    .option('deterministic', {
      type: 'boolean',
      describe:
        "Batch-invariant engine: a row's log-probs and a sample's tokens do not depend on the batch size or on what shares the batch (--no-deterministic: the fast path) [default: on for CPU, off on GPU]",
    });
}

export function buildRunConfig(raw: RawRunOptions): { config: RunConfig; settings: RunSettings } {
  const preset = raw.preset ? PRESETS[raw.preset] : {};
  if (raw.preset && !preset) throw new UsageError(`unknown preset ${raw.preset}`, { hint: `use one of ${Object.keys(PRESETS).join(', ')}` });
  const options: RawRunOptions = { ...preset, ...definedOnly(raw) };
  const device = (options.device ?? 'auto') as DeviceChoice;
  const quant = single(parseChoiceList(options.quant ?? deviceDefaults(device).quant, QUANT_MODES, '--quant'), '--quant');
  const attn = single(parseChoiceList(options.attn ?? deviceDefaults(device).attn, ATTENTION_BACKENDS, '--attn'), '--attn');
  const common: CommonRunConfig = {
    model: nonEmpty(options.model ?? DEFAULTS.model, '--model'),
    revision: options.revision,
    quant,
    attn,
    computeDtype: options['compute-dtype'] as RunConfig['computeDtype'],
    ...(options['model-impl'] && options['model-impl'] !== 'auto' ? { modelImpl: options['model-impl'] as 'native' | 'hf' } : {}),
    device,
    deterministic: options.deterministic,
    seed: int(options.seed ?? DEFAULTS.seed, '--seed'),
    tasks: parseChoiceList(options.tasks ?? DEFAULT_TASKS, TASK_NAMES, '--tasks', { order: 'allowed' }),
    backend: backendChoice(options.backend),
  };
  if (common.modelImpl && common.backend !== undefined && common.backend !== DEFAULT_BACKEND) {
    throw new UsageError(`--model-impl chooses our engine's model code, but --backend ${common.backend} runs the model elsewhere`, {
      hint: 'drop --model-impl, or use --backend engine',
    });
  }
  // Every registered task's config, whether the run has the task or not: the config hash covers them all, so a
  // run's identity does not depend on which tasks exist in the code beside the ones it asked for.
  const taskConfigs = Object.fromEntries(TASK_REGISTRY.map((task) => [task.name, task.configFrom(options as Flags, { device })])) as unknown as TaskConfigs;
  const backend = backendFlags(options, common);
  const config: RunConfig = { ...common, ...(backend.config ? { backendConfig: backend.config } : {}), ...taskConfigs };
  const settings: RunSettings = {
    runDir: options['run-dir'],
    resultsDir: options['results-dir'],
    fresh: options.fresh ?? false,
    stages: options.stages === undefined ? undefined : parseChoiceList(options.stages, STAGE_NAMES, '--stages', { order: 'allowed' }),
    concurrency: positiveInt(options.concurrency ?? availableParallelism(), '--concurrency'),
    batchSize: options['batch-size'] === undefined ? undefined : batchSize(options['batch-size']),
    ...(backend.settings ? { backendSettings: backend.settings } : {}),
    ...(options.shard === undefined ? {} : { shard: shardFlag(String(options.shard), config, options.stages) }),
    ...(options.devices === undefined ? {} : { devices: devicesFlag(String(options.devices), config) }),
    json: options.json ?? false,
    verbose: options.verbose ?? false,
  };
  if (settings.stages) {
    const own = stagesForTasks(config.tasks).map((stage) => stage.name);
    if (!settings.stages.some((stage) => own.includes(stage))) {
      throw new UsageError(`--stages ${settings.stages.join(',')} selects no stage of --tasks ${config.tasks.join(',')}: nothing would run`, {
        hint: `this run's stages are ${own.join(', ')}`,
      });
    }
  }
  return { config, settings };
}

/** --shard i/N: parsed, refused for tasks that cannot be shared out and for the scoring stages (merge scores). */
function shardFlag(text: string, config: RunConfig, stages: string | undefined): Shard {
  const shard = parseShard(text);
  const whole = config.tasks.filter((task) => !SHARDABLE_TASKS.includes(task));
  if (whole.length > 0) {
    throw new UsageError(`--shard cannot share out --tasks ${whole.join(',')} yet`, {
      hint: `run them on one machine without --shard; these tasks can be sharded: ${SHARDABLE_TASKS.join(', ')}`,
    });
  }
  const scoring = (stages ?? '').split(',').filter((stage) => SCORING_STAGES.includes(stage.trim()));
  if (scoring.length > 0) {
    throw new UsageError(`--shard runs the work stages only, not --stages ${scoring.join(',')}: a shard's figures would cover part of the units`, {
      hint: 'run the shards without those stages, then `evalpipe merge DIR... --out DIR` scores the whole',
    });
  }
  return shard;
}

/** --devices: our engine only (a served model's replicas are --base-url's). */
function devicesFlag(text: string, config: RunConfig): string[] {
  if (config.backend !== undefined) {
    throw new UsageError(`--devices applies to --backend engine only`, { hint: 'with --backend openai, give each replica its own --base-url' });
  }
  return parseDevices(text, config.device);
}

/** --backend: a registered name; the default is left out of the config, so older runs keep their hash. */
function backendChoice(name: string | undefined): string | undefined {
  if (name !== undefined && !BACKEND_NAMES.includes(name)) {
    throw new UsageError(`--backend: unknown backend "${name}"`, { hint: `use one of ${BACKEND_NAMES.join(', ')}` });
  }
  return name === DEFAULT_BACKEND ? undefined : name;
}

/**
 * The chosen backend's own flags (BackendKind.options) read into its config part (hashed) and settings (not);
 * another backend's flag is refused, and so are tasks the backend cannot run.
 */
function backendFlags(options: RawRunOptions, common: CommonRunConfig): { config?: Record<string, unknown>; settings?: Record<string, unknown> } {
  const chosen = backendNamed(common.backend);
  const own = new Set(Object.keys(chosen.options ?? {}));
  for (const other of BACKEND_REGISTRY) {
    for (const flag of Object.keys(other.options ?? {})) {
      if (!own.has(flag) && options[flag] !== undefined) {
        throw new UsageError(`--${flag} applies to --backend ${other.name} only`, { hint: `add --backend ${other.name}, or leave --${flag} out` });
      }
    }
  }
  const refused = common.tasks.filter((task) => chosen.unsupportedTasks?.includes(task));
  if (refused.length > 0) {
    const allowed = TASK_NAMES.filter((task) => !chosen.unsupportedTasks?.includes(task));
    throw new UsageError(`--backend ${chosen.name} cannot run --tasks ${refused.join(',')}`, { hint: `use --tasks ${allowed.join(',')}` });
  }
  return {
    ...(chosen.configFrom ? { config: chosen.configFrom(options as Flags) } : {}),
    ...(chosen.settingsFrom ? { settings: chosen.settingsFrom(options as Flags) } : {}),
  };
}

function definedOnly(raw: RawRunOptions): Partial<RawRunOptions> {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined)) as Partial<RawRunOptions>;
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

/** One run's precision or attention: a list of several is a plan of runs (cli/run-plan.ts), not one run. */
function single<T extends string>(values: T[], flag: string): T {
  if (values.length !== 1)
    throw new UsageError(`${flag} names ${values.length} values for one run`, { hint: 'plan several runs with planRuns (evalpipe run does)' });
  return values[0]!;
}
