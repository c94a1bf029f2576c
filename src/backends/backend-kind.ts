import type { ModelBackend } from './model-backend.js';

/** How a backend is started for a run. */
export interface BackendStartOptions {
  signal?: AbortSignal;
  /** Forward the backend's own log lines to stderr (--verbose). */
  verbose: boolean;
}

/**
 * One kind of model backend: a folder under src/backends/<name>/ that implements ModelBackend, plus one line in
 * src/backends/registry.ts. `--backend <name>` picks it; the run records its load result and info in the manifest
 * whatever the kind, so every stage, the report and the leaderboard work unchanged.
 */
export interface BackendKind {
  /** The --backend name (part of the run's identity when it is not the default). */
  readonly name: string;
  readonly description: string;
  start(options: BackendStartOptions): Promise<ModelBackend>;
}
