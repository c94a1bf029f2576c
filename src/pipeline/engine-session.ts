import type { ModelBackend } from '../backends/model-backend.js';
import { backendNamed } from '../backends/registry.js';
import type { LoadParams } from '../backends/engine/protocol.js';
import { RunStoreError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { RunConfig } from './run-config.js';
import type { RunDirectory } from './store/run-directory.js';
import { engineLabels } from './engines/engine-devices.js';
import { EnginePool } from './engines/engine-pool.js';

/**
 * Starts the run's model backend (--backend, our engine by default) and loads the model only when a stage needs it,
 * records what it ran on in the manifest, and refuses to resume a run on different weights than it started with.
 */
export class EngineSession {
  private engine: ModelBackend | undefined;

  constructor(
    private readonly run: RunDirectory,
    private readonly config: RunConfig,
    private readonly options: {
      signal?: AbortSignal;
      verbose: boolean;
      backendSettings?: Readonly<Record<string, unknown>> | undefined;
      /** --devices: one engine per entry (src/pipeline/engines/); undefined: one engine where --device says. */
      devices?: readonly string[] | undefined;
      /** The engines' names when a sweep placed this run on part of its --devices; recorded in the manifest. */
      labels?: readonly string[] | undefined;
    },
  ) {}

  async get(): Promise<ModelBackend> {
    if (this.engine?.alive) return this.engine;
    const devices = this.options.devices;
    if (devices && devices.length > 1) return this.startPool(devices);
    const placed = this.options.labels;
    log.info(placed && devices ? `engine: starting on ${placed[0]}` : 'engine: starting');
    const engine = await this.startOne(devices?.[0]);
    this.engine = engine;
    await this.load(engine);
    if (placed && devices) await this.run.updateManifest({ engines: { devices: [...devices], labels: [...placed] } });
    else if (this.run.manifest.engines) await this.run.updateManifest({ engines: undefined }); // this attempt runs one engine
    return engine;
  }

  /** --devices: one engine per entry, each started and loaded (side by side), then one pool over them. */
  private async startPool(devices: readonly string[]): Promise<ModelBackend> {
    const placed = this.options.labels;
    log.info(`engine: starting ${devices.length} engines (${placed ? placed.join(', ') : `--devices ${devices.join(',')}`})`);
    const started = await Promise.allSettled(devices.map((device) => this.startOne(device)));
    const engines = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    const failed = started.find((outcome) => outcome.status === 'rejected');
    const labels = placed ?? engineLabels(devices);
    const pool = new EnginePool(engines.map((backend, index) => ({ label: labels[index]!, backend })));
    this.engine = pool;
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    const loaded = await Promise.allSettled(engines.map((engine) => this.load(engine, engine !== engines[0])));
    const refused = loaded.find((outcome) => outcome.status === 'rejected');
    if (refused) {
      await pool.close();
      throw refused.reason;
    }
    const weights = new Set(loaded.map((outcome) => (outcome as PromiseFulfilledResult<string | null>).value));
    if (weights.size > 1) {
      await pool.close();
      throw new RunStoreError('the engines of --devices loaded different weights', { hint: 'every device must see the same checkpoint' });
    }
    await this.run.updateManifest({ engines: { devices: [...devices], ...(placed ? { labels: [...placed] } : {}) } });
    return pool;
  }

  private startOne(device: string | undefined): Promise<ModelBackend> {
    return backendNamed(this.config.backend).start({
      signal: this.options.signal,
      verbose: this.options.verbose,
      config: this.config.backendConfig,
      settings: this.options.backendSettings,
      device,
    });
  }

  /** Load the model on one engine (the first or only one records what it ran on in the manifest); its weights' sha256. */
  private async load(engine: ModelBackend, quiet = false): Promise<string | null> {
    const loadParams: LoadParams = {
      model: this.config.model,
      quant: this.config.quant,
      attn: this.config.attn,
      device: this.config.device,
      seed: this.config.seed,
      ...(this.config.revision ? { revision: this.config.revision } : {}),
      ...(this.config.computeDtype ? { compute_dtype: this.config.computeDtype } : {}),
      ...(this.config.modelImpl ? { backend: this.config.modelImpl } : {}),
      ...(this.config.deterministic === undefined ? {} : { deterministic: this.config.deterministic }),
    };
    log.info(`engine: loading ${this.config.model} (${this.config.quant}, ${this.config.attn})`);
    const model = await engine.load(loadParams, { signal: this.options.signal });
    const info = await engine.info({ signal: this.options.signal, timeoutMs: 60_000 });
    const previous = this.run.manifest.model;
    if (previous?.weights_sha256 && model.weights_sha256 && previous.weights_sha256 !== model.weights_sha256) {
      await engine.close();
      throw new RunStoreError(
        `the model's weights changed since this run started (sha256 ${previous.weights_sha256.slice(0, 12)} → ${model.weights_sha256.slice(0, 12)})`,
        { hint: 'resume with the original checkpoint, or pass --fresh to start the run over' },
      );
    }
    if (previous && previous.deterministic !== undefined && previous.deterministic !== model.deterministic) {
      await engine.close();
      const mode = (on: boolean | undefined) => (on ? 'deterministic (batch-invariant)' : 'fast path');
      throw new RunStoreError(
        `this run started on the ${mode(previous.deterministic)} engine and would resume on the ${mode(model.deterministic)}: records of both would mix`,
        { hint: `resume with --${previous.deterministic ? '' : 'no-'}deterministic (and the same --device), or pass --fresh to start over` },
      );
    }
    if (quiet) return model.weights_sha256;
    const { model: _loaded, ...engineFacts } = info;
    await this.run.updateManifest({
      model,
      engine: engineFacts,
      hardware: { ...this.run.manifest.hardware, device: info.device },
    });
    const size = model.n_params === null ? 'parameters not reported' : `${model.n_params.toLocaleString('en-US')} parameters`;
    log.info(`engine: ready on ${info.device.name} (${size}, ${model.dtype})`);
    return model.weights_sha256;
  }

  async close(): Promise<void> {
    await this.engine?.close();
    this.engine = undefined;
  }
}
