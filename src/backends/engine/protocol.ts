/**
 * Types of the engine protocol (docs/engine-protocol.md). The JSON Schemas in schemas/engine/<op>.json are the
 * contract both sides check at run time (engine-schemas.ts here, cuda/evalpipe_engine/request_schemas.py there);
 * these types are their TypeScript reading, kept equal by engine-schemas.test.ts where they name choices.
 */

import type { RemoteModelFacts, RemoteServerFacts } from '../openai/remote-facts.js';

export const ENGINE_PROTOCOL_VERSION = 1;

export type EngineErrorType = 'bad_request' | 'not_found' | 'unsupported' | 'oom' | 'not_loaded' | 'internal';
export const ENGINE_ERROR_TYPES: readonly EngineErrorType[] = ['bad_request', 'not_found', 'unsupported', 'oom', 'not_loaded', 'internal'];

/** The ops, each with its schema file schemas/engine/<op>.json. */
export type EngineOp = 'info' | 'load' | 'score' | 'generate' | 'bench' | 'shutdown';
export const ENGINE_OPS: readonly EngineOp[] = ['info', 'load', 'score', 'generate', 'bench', 'shutdown'];

export interface EngineRequest {
  id: string;
  op: string;
  params: Record<string, unknown>;
}

export interface EngineErrorPayload {
  type: EngineErrorType;
  message: string;
  hint?: string;
}

export type EngineLine =
  | { id: string | null; ok: true; result: unknown }
  | { id: string | null; ok: false; error: EngineErrorPayload }
  | { id: string | null; event: string; data: unknown };

export interface ReadyEvent {
  protocol: number;
  engine_version: string;
  pid: number;
}

export type QuantMode = 'fp32' | 'fp16' | 'bf16' | 'int8' | 'nf4' | 'fp8';
export type AttentionBackend = 'eager' | 'sdpa' | 'flash';
export type DeviceChoice = 'auto' | 'cpu' | 'cuda';
export const QUANT_MODES: readonly QuantMode[] = ['fp32', 'fp16', 'bf16', 'int8', 'nf4', 'fp8'];
export const ATTENTION_BACKENDS: readonly AttentionBackend[] = ['eager', 'sdpa', 'flash'];

/**
 * The fast-path switches (docs/engine-protocol.md#fast-paths), all on by default. A switch left out or null takes
 * its environment variable in the engine's environment (EVALPIPE_CUDA_GRAPHS, EVALPIPE_DECODE_KERNEL,
 * EVALPIPE_CUDA_RTC, EVALPIPE_FP8_FUSED: off when set to 0).
 */
export interface FastPathOptions {
  /** Decode steps as CUDA graph replays. */
  cuda_graphs?: boolean | null;
  /** Triton flash-decoding attention in decode steps. */
  decode_kernel?: boolean | null;
  /** The int8/fp8/nf4 decode GEMV in CUDA C++ compiled at run time (NVRTC). */
  cuda_rtc?: boolean | null;
  /** The fp8 prefill quantizes activations inside add+LayerNorm and GELU. */
  fp8_fused?: boolean | null;
}

/** The switches as the engine resolved them at load (recorded in the manifest with the rest of LoadResult). */
export interface FastPaths {
  cuda_graphs: boolean;
  decode_kernel: boolean;
  cuda_rtc: boolean;
  fp8_fused: boolean;
}

export interface LoadParams {
  model: string;
  revision?: string;
  quant?: QuantMode;
  attn?: AttentionBackend;
  device?: DeviceChoice;
  compute_dtype?: 'bf16' | 'fp16' | 'fp32';
  seed?: number;
  /** auto (native StarCoder2 for StarCoder2 checkpoints, HF transformers otherwise), native or hf. */
  backend?: 'auto' | 'native' | 'hf';
  /** The batch-invariant mode; omitted: the engine's default for the device (on for CPU, off on CUDA). */
  deterministic?: boolean;
  fast_paths?: FastPathOptions;
}

export interface LoadResult {
  model_id: string;
  /** `remote`: a model served by another program (--backend openai), whose facts below are what its server says. */
  source: 'preset' | 'local' | 'hub' | 'remote';
  architecture: string;
  revision: string | null;
  weights_sha256: string | null;
  /** null: not known (a remote server does not say). */
  n_params: number | null;
  vocab_size: number | null;
  /** A remote server's max_model_len; null when it does not say. */
  max_position_embeddings: number | null;
  sliding_window: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  /** `remote`: the server chose (--quant and --attn do not reach it). */
  quant: QuantMode | 'remote';
  attn: AttentionBackend | 'remote';
  device: string;
  dtype: string;
  load_seconds: number;
  weight_bytes: number | null;
  backend?: string;
  /** How generate decodes: `continuous` (one queue for the whole request, finished rows refilled every step) or
   * `static` (batches that end with their longest sample). Absent: an engine before it said (static). */
  batching?: 'continuous' | 'static';
  /** The generate op's sampler (a run's samples are made with one: GENERATE_SAMPLER). */
  sampler?: string;
  /** Whether the batch-invariant mode ran (the answer to LoadParams.deterministic). */
  deterministic?: boolean;
  /** Which fast paths ran (optional: manifests written before the engine reported them have none). */
  fast_paths?: FastPaths;
  seed?: number | null;
  compute_dtype?: 'bf16' | 'fp16' | 'fp32' | null;
  /** Where a remote model is served and what its server reported (source `remote` only). */
  remote?: RemoteModelFacts;
  /** How the weights were trained, when evalpipe trained them (bench/train_reference.py; schemas/engine/load.json). */
  trained?: TrainedProvenance;
}

/** The load result's `trained` block: a model evalpipe trained itself, never StarCoder2's own weights. */
export interface TrainedProvenance {
  /** The training record (training.json), relative to the repository when it is inside it. */
  record: string;
  script: string;
  command?: string | null;
  seed: number | null;
  corpus: { source?: string | null; files?: number | null; bytes?: number | null; tokens?: number | null; file_list_sha256?: string | null };
  steps?: number | null;
  tokens_seen?: number | null;
  held_out_perplexity?: number | null;
  card?: string | null;
  date_utc?: string | null;
  status?: string | null;
  note: string;
}

export interface ScoreRowInput {
  index: number;
  text: string;
}

export interface ScoreParams {
  rows: ScoreRowInput[];
  max_length?: number;
  stride?: number;
  add_bos?: boolean;
  token_budget?: number;
  /** evalpipe (default) or lm-eval: lm-evaluation-harness's rolling windows (docs/engine-protocol.md). */
  windowing?: Windowing;
}

/** The score op's window plans: ours (the default) and lm-evaluation-harness's rolling loglikelihood. */
export type Windowing = 'evalpipe' | 'lm-eval';

export interface ScoreResult {
  rows: ScoredRow[];
  max_length: number;
  stride: number;
  add_bos: boolean;
  /** The windowing that scored the rows (engines before it existed: absent, evalpipe). */
  windowing?: Windowing;
}

/** A `progress` event's data (score: windows, bench: minibatches). */
export interface EngineProgress {
  done: number;
  total: number;
  unit: 'windows' | 'minibatches';
}

export interface ScoredRow {
  index: number;
  nll_sum: number;
  n_scored_tokens: number;
  n_tokens: number;
  n_bytes: number;
  n_windows: number;
}

export interface GenerateRequest {
  key: string;
  prompt: string;
  /** The sample indices to produce instead of 0..n-1. */
  samples?: number[];
}

export interface GenerateParams {
  requests: GenerateRequest[];
  n: number;
  temperature: number;
  top_p: number;
  max_new_tokens: number;
  seed: number;
  stop: string[];
  add_bos?: boolean;
  /** Samples decoded together in one batch (the native engine); absent: the engine's default (memory-sized rows for
   * an engine that batches continuously). */
  max_batch_rows?: number;
  /** The sampler the run's samples are made with (its identity); the engine refuses another than its own. */
  sampler?: string;
}

export interface GenerateResult {
  /** Samples streamed as `partial` events. */
  count: number;
  /** The most samples the engine decoded together (engines before it reported this: absent). */
  batch_rows?: number;
}

export interface GeneratedSample {
  key: string;
  sample_index: number;
  completion: string;
  /** `prompt_too_long`: the prompt leaves the model no room for a token; the completion is empty. */
  finish_reason: 'stop' | 'eos' | 'length' | 'prompt_too_long';
  n_new_tokens: number;
  stop_sequence: string | null;
  n_prompt_tokens?: number;
}

export interface BenchParams {
  batch: number;
  ctx: number;
  warmup?: number;
  iters?: number;
  repeats?: number;
  seed?: number;
}

export interface BenchResult {
  status: 'ok' | 'oom';
  seconds_per_minibatch: number | null;
  tokens_per_s: number | null;
  peak_gib: number | null;
  times?: number[];
}

export interface EngineInfo {
  engine_version: string;
  protocol: number;
  /** null for a remote server (its software is in `server`). */
  python: string | null;
  torch: string | null;
  transformers?: string;
  triton?: string | null;
  device: { type: string; name: string; capability?: string | null; total_gib?: number | null; driver?: string | null };
  model: LoadResult | null;
  /** A remote backend's server: its base URL (no credentials) and the software it names (--backend openai). */
  server?: RemoteServerFacts;
}
