import type {
  BenchParams,
  BenchResult,
  EngineInfo,
  EngineProgress,
  GeneratedSample,
  GenerateParams,
  GenerateResult,
  LoadParams,
  LoadResult,
  ScoreParams,
  ScoreResult,
} from './engine/protocol.js';

/** What every call takes: a way to cancel it, and a bound on how long to wait. */
export interface BackendCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ScoreCallOptions extends BackendCallOptions {
  /** After each group of windows. */
  onProgress?: (progress: EngineProgress) => void;
}

export interface GenerateCallOptions extends BackendCallOptions {
  /** Each sample as soon as it is finished (in no particular order); the call resolves after the last. */
  onSample?: (sample: GeneratedSample) => void;
}

export interface BenchCallOptions extends BackendCallOptions {
  /** After each round of timed minibatches. */
  onProgress?: (progress: EngineProgress) => void;
}

/**
 * A model the pipeline can score, sample and time: the one contract its stages talk to. The engine client
 * (EngineProcess, our own engine as a child process) implements it, and so does OpenAiBackend (a model served by an
 * OpenAI-compatible server, src/backends/openai/). Every method's params and result are those of the engine op of the same name
 * (docs/engine-protocol.md, schemas/engine/<op>.json); errors are EvalpipeErrors (EngineRequestError for a typed
 * refusal, whose `type` says which: bad_request, not_found, unsupported, oom, not_loaded, internal;
 * EngineProcessError when the backend died or stopped answering).
 *
 *   const backend: ModelBackend = await EngineProcess.start();
 *   const model = await backend.load({ model: 'preset:tiny-starcoder2', device: 'cpu' });
 *   const { rows } = await backend.score({ rows: [{ index: 0, text: 'def f(x):\n    return x\n' }] });
 *   await backend.generate({ requests: [{ key: 'k', prompt: 'def add(a, b):\n' }], n: 1, temperature: 0, top_p: 1,
 *     max_new_tokens: 64, seed: 0, stop: ['\ndef'] }, { onSample: (sample) => save(sample) });
 *   await backend.close();
 */
export interface ModelBackend {
  /** False once the backend can no longer answer (its process died or was stopped): start a new one to go on. */
  readonly alive: boolean;
  /** Requests it serves at once (several engine processes: src/pipeline/engines/engine-pool.ts); absent: 1. */
  readonly parallelism?: number;
  /** Versions and device, and the model loaded (null before `load`). Needs no model. */
  info(options?: BackendCallOptions): Promise<EngineInfo>;
  /** Load a model (replacing the one before); the result is what a run records as its manifest's `model`. */
  load(params: LoadParams, options?: BackendCallOptions): Promise<LoadResult>;
  /** Negative log-likelihood per row (perplexity), long rows in windows; rows come back in request order. */
  score(params: ScoreParams, options?: ScoreCallOptions): Promise<ScoreResult>;
  /** Completions, each streamed to `onSample` as it finishes; resolves with their count. */
  generate(params: GenerateParams, options?: GenerateCallOptions): Promise<GenerateResult>;
  /** One latency cell (batch x ctx); an out-of-memory cell is a result (status "oom"), not an error. */
  bench(params: BenchParams, options?: BenchCallOptions): Promise<BenchResult>;
  /** Stop the backend (a clean shutdown, a kill if it does not go within `timeoutMs`). Safe to call twice. */
  close(timeoutMs?: number): Promise<void>;
}
