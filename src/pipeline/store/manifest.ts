import type { DatasetProvenance } from '../../datasets/load.js';
import type { EngineInfo, LoadResult } from '../../backends/engine/protocol.js';
import type { RunConfig } from '../run-config.js';

export const MANIFEST_SCHEMA_VERSION = 1;

/** manifest.json: what was asked for and what it ran on. Written atomically; never partial. */
export interface Manifest {
  schema_version: number;
  run_id: string;
  created_at: string;
  updated_at: string;
  config: RunConfig;
  config_hash: string;
  tool: { name: 'evalpipe'; version: string; node: string };
  engine: Omit<EngineInfo, 'model'> | null;
  model: LoadResult | null;
  datasets: Record<string, DatasetProvenance>;
  hardware: { host_cpu: string; host_cores: number; host_memory_gib: number; device: EngineInfo['device'] | null };
  seeds: { run: number };
  stop_sequences: string[];
  prompt_handling: { strip_prompt: boolean };
  /**
   * How the work was batched on the latest attempt (--batch-size): not part of the run's identity, since with the
   * deterministic engine it cannot change a result; on the fast path it can, and this says what ran.
   */
  /** generate_samples_per_batch: the most samples decoded together (after the generate stage: what the engine
   * used); generate_batching: how (absent before the stage ran, or in runs made before it was recorded). */
  batching?: { perplexity_rows_per_request: number; generate_samples_per_batch: number; generate_batching?: 'continuous' | 'static' };
  /** The sandbox the execute stage ran in (the image tag names its recipe hash); a resume must use the same. */
  sandbox?: { image: string; image_id: string; recipe_sha: string };
  /**
   * --devices: the engine processes the latest attempt ran (one per entry: a GPU index or cpu), as one pool. A run
   * that `sweep` placed on part of its --devices also has `labels`: those engines' names among the sweep's entries
   * (`cuda:1`, `cpu#2`), so side-by-side runs on CPU engines say which one each ran on.
   */
  engines?: { devices: string[]; labels?: string[] };
  /** --shard i/N: which share of the units this run directory holds (src/pipeline/shard.ts); absent when unsharded. */
  shard?: ShardManifest;
  /** A run directory written by `evalpipe merge`: the shards it was merged from, in shard order. */
  merged_from?: { shard: string; dir: string; host_cpu: string; device: string | null }[];
}

/** The manifest's `shard`: the share, how units are assigned, and the task versions the shard's work was done with. */
export interface ShardManifest {
  index: number;
  count: number;
  scheme: string;
  task_versions: Record<string, number>;
}
