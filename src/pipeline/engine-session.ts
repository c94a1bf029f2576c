import type { ModelBackend } from '../backends/model-backend.js';
import { backendNamed } from '../backends/registry.js';
import type { LoadParams } from '../backends/engine/protocol.js';
import { RunStoreError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { RunConfig } from './run-config.js';
import type { RunDirectory } from './store/run-directory.js';

/**
 * Starts the run's model backend (--backend, our engine by default) and loads the model only when a stage needs it,
 * records what it ran on in the manifest, and refuses to resume a run on different weights than it started with.
 */
export class EngineSession {
  private engine: ModelBackend | undefined;

  constructor(
    private readonly run: RunDirectory,
    private readonly config: RunConfig,
    private readonly options: { signal?: AbortSignal; verbose: boolean; backendSettings?: Readonly<Record<string, unknown>> | undefined },
  ) {}

  async get(): Promise<ModelBackend> {
    if (this.engine?.alive) return this.engine;
    log.info('engine: starting');
    const engine = await backendNamed(this.config.backend).start({
      signal: this.options.signal,
      verbose: this.options.verbose,
      config: this.config.backendConfig,
      settings: this.options.backendSettings,
    });
    this.engine = engine;
    const loadParams: LoadParams = {
      model: this.config.model,
      quant: this.config.quant,
      attn: this.config.attn,
      device: this.config.device,
      seed: this.config.seed,
      ...(this.config.revision ? { revision: this.config.revision } : {}),
      ...(this.config.computeDtype ? { compute_dtype: this.config.computeDtype } : {}),
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
    const { model: _loaded, ...engineFacts } = info;
    await this.run.updateManifest({
      model,
      engine: engineFacts,
      hardware: { ...this.run.manifest.hardware, device: info.device },
    });
    const size = model.n_params === null ? 'parameters not reported' : `${model.n_params.toLocaleString('en-US')} parameters`;
    log.info(`engine: ready on ${info.device.name} (${size}, ${model.dtype})`);
    return engine;
  }

  async close(): Promise<void> {
    await this.engine?.close();
    this.engine = undefined;
  }
}
