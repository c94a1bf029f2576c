/** Types of the engine protocol (docs/engine-protocol.md). The Python side is cuda/evalpipe_engine/server.py. */

export const ENGINE_PROTOCOL_VERSION = 1;

export type EngineErrorType = 'bad_request' | 'not_found' | 'unsupported' | 'oom' | 'not_loaded' | 'internal';

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

export interface LoadParams {
  model: string;
  revision?: string;
  quant?: QuantMode;
  attn?: AttentionBackend;
  device?: DeviceChoice;
  compute_dtype?: 'bf16' | 'fp16' | 'fp32';
  seed?: number;
  /** The batch-invariant mode; omitted: the engine's default for the device (on for CPU, off on CUDA). */
  deterministic?: boolean;
}

export interface LoadResult {
  model_id: string;
  source: 'preset' | 'local' | 'hub';
  architecture: string;
  revision: string | null;
  weights_sha256: string | null;
  n_params: number;
  vocab_size: number;
  max_position_embeddings: number;
  sliding_window: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  quant: QuantMode;
  attn: AttentionBackend;
  device: string;
  dtype: string;
  load_seconds: number;
  weight_bytes: number;
  backend?: string;
  /** Whether the batch-invariant mode ran (the answer to LoadParams.deterministic). */
  deterministic?: boolean;
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
}

export interface ScoredRow {
  index: number;
  nll_sum: number;
  n_scored_tokens: number;
  n_tokens: number;
  n_bytes: number;
  n_windows: number;
}

export interface GenerateParams {
  requests: { key: string; prompt: string }[];
  n: number;
  temperature: number;
  top_p: number;
  max_new_tokens: number;
  seed: number;
  stop: string[];
}

export interface GeneratedSample {
  key: string;
  sample_index: number;
  completion: string;
  finish_reason: 'stop' | 'eos' | 'length';
  n_new_tokens: number;
  stop_sequence: string | null;
}

export interface BenchParams {
  batch: number;
  ctx: number;
  warmup?: number;
  iters?: number;
  repeats?: number;
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
  python: string;
  torch: string;
  transformers?: string;
  triton?: string | null;
  device: { type: string; name: string; capability?: string | null; total_gib?: number | null; driver?: string | null };
  model: LoadResult | null;
}
