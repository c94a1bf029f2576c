import type { Options } from 'yargs';
import type { Flags } from '../util/option-values.js';
import type { ModelBackend } from './model-backend.js';

/** How a backend is started for a run. */
export interface BackendStartOptions {
  signal?: AbortSignal;
  /** Forward the backend's own log lines to stderr (--verbose). */
  verbose: boolean;
  /** The backend's part of the run config (its `configFrom`), undefined for a backend without one. */
  config?: Readonly<Record<string, unknown>> | undefined;
  /** The backend's settings (its `settingsFrom`), undefined for a backend without them. */
  settings?: Readonly<Record<string, unknown>> | undefined;
  /** One --devices entry: the GPU index this instance alone may use (CUDA_VISIBLE_DEVICES), or `cpu`. */
  device?: string | undefined;
}

/**
 * One kind of model backend: a folder under src/backends/<name>/ that implements ModelBackend, plus one line in
 * src/backends/registry.ts. `--backend <name>` picks it; the run records its load result and info in the manifest
 * whatever the kind, so every stage, the report and the leaderboard work unchanged.
 *
 * A backend declares its own flags the way a task does: `options` are added to `run` and `sweep`, `configFrom`
 * reads the part of them that decides results (hashed into the run's identity, config.backendConfig) and
 * `settingsFrom` the part that does not (timeouts, retries, concurrency: never hashed, never written to the
 * manifest). Both run only when --backend names this kind; its flags given with another backend are refused.
 */
export interface BackendKind {
  /** The --backend name (part of the run's identity when it is not the default). */
  readonly name: string;
  readonly description: string;
  /** The backend's own flags on `run` and `sweep` (yargs option definitions by flag name; no yargs defaults). */
  readonly options?: Readonly<Record<string, Options>>;
  /** Tasks it cannot run: refused before a run starts, with one line naming the tasks it can. */
  readonly unsupportedTasks?: readonly string[];
  /** Its part of the run config from the flags (hashed); bad or missing values throw UsageError. */
  configFrom?(flags: Flags): Record<string, unknown>;
  /** Its settings from the flags (not hashed); bad values throw UsageError. */
  settingsFrom?(flags: Flags): Record<string, unknown>;
  start(options: BackendStartOptions): Promise<ModelBackend>;
}
