import pLimit from 'p-limit';
import { EvalpipeError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import type { BackendKind } from '../backend-kind.js';
import type { BackendCallOptions, BenchCallOptions, GenerateCallOptions, ModelBackend, ScoreCallOptions } from '../model-backend.js';
import type {
  BenchParams,
  BenchResult,
  EngineInfo,
  GenerateParams,
  GenerateResult,
  LoadParams,
  LoadResult,
  ScoreParams,
  ScoreResult,
} from '../engine/protocol.js';
import { LocalTokenizer } from './local-tokenizer.js';
import { RemoteRequestError, RemoteServerError } from './openai-errors.js';
import { isLoopbackUrl, OPENAI_OPTIONS, openAiConfigFrom, openAiSettingsFrom, type OpenAiConfig, type OpenAiSettings } from './openai-options.js';
import { Redactor } from './redact.js';
import type { RemoteModelFacts, ServedModel } from './remote-facts.js';
import { generateRemotely } from './remote-generation.js';
import { scoreRemotely } from './remote-scoring.js';
import { RequestRefused, RequestRunner, type RunnerOptions } from './request-runner.js';
import { ServerConnection } from './server-connection.js';
import { ServerQuirks } from './server-quirks.js';
import { serverBosToken, ServerTokenizer, type TextTokenizer } from './tokenization.js';

/** Failed attempts in a row (over all requests) after which the stage stops with one line. */
export const BREAKER_THRESHOLD = 8;

export interface OpenAiBackendOptions {
  config: OpenAiConfig;
  settings: OpenAiSettings;
  /** The API key (read from settings.apiKeyEnv by the backend kind); undefined or empty: none is sent. */
  apiKey: string | undefined;
  /** Test hooks: backoff base and cap (ms), the breaker's threshold, the random source of the jitter. */
  retry?: Partial<Pick<RunnerOptions, 'baseDelayMs' | 'maxDelayMs' | 'maxRetryAfterMs' | 'breakerThreshold' | 'random'>>;
}

interface Loaded {
  result: LoadResult;
  maxModelLen: number | null;
  bosTokenId: number | null;
  tokenizer: TextTokenizer | undefined;
}

/**
 * A model served by any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp server, OpenAI), as a ModelBackend:
 * load checks the server and the model (GET /v1/models), score computes perplexity from prompt log-probabilities
 * (remote-scoring.ts), generate samples completions (remote-generation.ts), bench is unsupported. Every request
 * goes through one RequestRunner (timeouts, retries, circuit breaker, --backend-concurrency) and every message
 * through the redactor, so the API key never reaches a file, a log line or an error (docs/openai-backend.md).
 */
export class OpenAiBackend implements ModelBackend {
  private readonly redactor: Redactor;
  private readonly connection: ServerConnection;
  private readonly runner: RequestRunner;
  /** Load's own runner: fewer retries, so a wrong URL or a server that is down is said in seconds. */
  private readonly loadRunner: RequestRunner;
  private readonly quirks = new ServerQuirks();
  private loaded: Loaded | undefined;
  private closed = false;

  constructor(private readonly options: OpenAiBackendOptions) {
    const apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.redactor = new Redactor([apiKey]);
    const timeoutMs = options.settings.requestTimeoutS * 1000;
    this.connection = new ServerConnection(options.config.base_url, apiKey, this.redactor, timeoutMs, options.settings.replicas);
    const runnerOptions: RunnerOptions = {
      timeoutMs,
      maxRetries: options.settings.maxRetries,
      breakerThreshold: BREAKER_THRESHOLD,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      maxRetryAfterMs: 600_000,
      random: Math.random,
      server: options.config.base_url,
      redactor: this.redactor,
      errorBody: (headers) => this.connection.errorBody(headers),
      ...options.retry,
    };
    const limit = pLimit(options.settings.concurrency);
    this.runner = new RequestRunner(runnerOptions, limit);
    this.loadRunner = new RequestRunner({ ...runnerOptions, maxRetries: Math.min(2, options.settings.maxRetries) }, limit);
    if (apiKey && !isLoopbackUrl(options.config.base_url) && options.config.base_url.startsWith('http:')) {
      log.warn(`--base-url ${options.config.base_url} is plain http: the API key travels in clear text (use https)`);
    }
  }

  get alive(): boolean {
    return !this.closed;
  }

  async info(_options: BackendCallOptions = {}): Promise<EngineInfo> {
    const software = this.connection.software();
    const named = software.server ?? Object.values(software)[0];
    return {
      engine_version: named ?? 'unknown',
      protocol: 0,
      python: null,
      torch: null,
      device: { type: 'remote', name: `${this.options.config.base_url}${named ? ` (${named})` : ''}` },
      model: this.loaded?.result ?? null,
      server: { base_url: this.options.config.base_url, software },
    };
  }

  async load(params: LoadParams, options: BackendCallOptions = {}): Promise<LoadResult> {
    return this.guard('load', async () => {
      const started = Date.now();
      const served = await this.servedModels(options.signal);
      const entry = served.find((model) => model.id === params.model);
      if (!entry) {
        throw new RemoteServerError(`the server at ${this.options.config.base_url} does not serve model "${params.model}"`, {
          hint: served.length > 0 ? `--model takes a served id: ${served.map((model) => model.id).join(', ')}` : 'the server lists no models (GET /v1/models)',
        });
      }
      const probed = await ServerTokenizer.probe(this.connection, this.loadRunner, params.model, options.signal);
      let tokenizer: TextTokenizer | undefined = probed?.tokenizer;
      let local: LocalTokenizer | undefined;
      if (!probed && this.options.config.tokenizer) {
        local = await LocalTokenizer.start(this.options.config.tokenizer, options.signal);
        tokenizer = local;
      }
      let bos: { id: number; source: RemoteModelFacts['bos_source'] } | undefined;
      if (probed) {
        const found = await serverBosToken(this.connection, this.loadRunner, probed.tokenizer, options.signal);
        if (found) bos = found;
      }
      if (!bos && this.options.config.tokenizer) {
        local ??= await LocalTokenizer.start(this.options.config.tokenizer, options.signal);
        if (local.bosTokenId !== null) bos = { id: local.bosTokenId, source: 'tokenizer' };
        if (tokenizer !== local) await local.close();
      }
      const maxModelLen = entry.max_model_len ?? probed?.maxModelLen ?? null;
      const remote: RemoteModelFacts = {
        base_url: this.options.config.base_url,
        software: this.connection.software(),
        api: this.options.config.chat ? 'chat' : 'completions',
        served_models: served,
        tokenizer: tokenizer?.kind ?? null,
        bos_source: bos?.source ?? null,
        ...(this.options.settings.replicas ? { replicas: this.options.settings.replicas } : {}),
      };
      const result: LoadResult = {
        model_id: entry.id,
        source: 'remote',
        architecture: 'remote',
        revision: null,
        seed: null,
        weights_sha256: null,
        n_params: null,
        vocab_size: null,
        max_position_embeddings: maxModelLen,
        sliding_window: null,
        bos_token_id: bos?.id ?? null,
        eos_token_id: local?.eosTokenId ?? null,
        quant: 'remote',
        attn: 'remote',
        compute_dtype: null,
        device: 'remote',
        dtype: 'remote',
        backend: 'openai',
        load_seconds: (Date.now() - started) / 1000,
        weight_bytes: null,
        remote,
      };
      await this.loaded?.tokenizer?.close();
      this.loaded = { result, maxModelLen, bosTokenId: bos?.id ?? null, tokenizer };
      log.info(
        `openai: ${entry.id} at ${this.options.config.base_url}${this.options.settings.replicas ? ` and ${this.options.settings.replicas.length - 1} more replicas` : ''}${maxModelLen ? `, ${maxModelLen} positions` : ''}; perplexity tokens from ${tokenizer ? (tokenizer.kind === 'server' ? "the server's /tokenize" : `--tokenizer ${this.options.config.tokenizer}`) : 'nowhere (no /tokenize, no --tokenizer)'}${bos ? `, BOS id ${bos.id}` : ''}`,
      );
      return result;
    });
  }

  async score(params: ScoreParams, options: ScoreCallOptions = {}): Promise<ScoreResult> {
    return this.guard('score', () => {
      const loaded = this.requireLoaded('score');
      return scoreRemotely(
        {
          connection: this.connection,
          runner: this.runner,
          quirks: this.quirks,
          model: loaded.result.model_id,
          maxModelLen: loaded.maxModelLen,
          bosTokenId: loaded.bosTokenId,
          tokenizer: loaded.tokenizer,
        },
        params,
        options,
      );
    });
  }

  async generate(params: GenerateParams, options: GenerateCallOptions = {}): Promise<GenerateResult> {
    return this.guard('generate', () => {
      const loaded = this.requireLoaded('generate');
      return generateRemotely(
        { connection: this.connection, runner: this.runner, quirks: this.quirks, model: loaded.result.model_id, chat: this.options.config.chat === true },
        params,
        options,
      );
    });
  }

  async bench(_params: BenchParams, _options: BenchCallOptions = {}): Promise<BenchResult> {
    throw new RemoteRequestError(
      'bench',
      'unsupported',
      "--backend openai does not time latency cells: a server's latency is a serving benchmark, separate work",
      'run --tasks perplexity,humaneval with --backend openai; the latency matrix needs --backend engine',
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const router = this.connection.router;
    if (router)
      log.info(
        `openai: requests per replica: ${router
          .stats()
          .map((replica) => `${replica.base_url} ${replica.requests} (${replica.failures} failed)`)
          .join(', ')}`,
      );
    await this.loaded?.tokenizer?.close();
  }

  private requireLoaded(op: string): Loaded {
    if (!this.loaded) throw new RemoteRequestError(op, 'not_loaded', 'no model is loaded', 'this is a bug in evalpipe: load a model first');
    return this.loaded;
  }

  private async servedModels(signal: AbortSignal | undefined): Promise<ServedModel[]> {
    let reply: { data?: unknown };
    try {
      reply = await this.loadRunner.run(
        'GET /models',
        (attempt) => this.connection.client.get<{ data?: unknown }>('/models', { signal: attempt.signal, maxRetries: 0 }),
        {
          signal,
        },
      );
    } catch (error) {
      if (error instanceof RemoteServerError) {
        throw new RemoteServerError(`cannot reach the server at ${this.options.config.base_url}: ${error.message}`, {
          hint: 'is it running, and is --base-url its OpenAI-compatible root (e.g. http://127.0.0.1:8000/v1)?',
          cause: error,
        });
      }
      throw error;
    }
    if (!Array.isArray(reply.data)) {
      throw new RemoteServerError(`the server at ${this.options.config.base_url} answered GET /models without a model list`, {
        hint: 'is --base-url the OpenAI-compatible root (it usually ends in /v1)?',
      });
    }
    return reply.data
      .filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string')
      .map((item) => {
        const model: ServedModel = { id: this.redactor.redact(item.id as string) };
        if (typeof item.owned_by === 'string') model.owned_by = this.redactor.redact(item.owned_by);
        if (Number.isInteger(item.max_model_len) && (item.max_model_len as number) > 0) model.max_model_len = item.max_model_len as number;
        if (typeof item.root === 'string') model.root = this.redactor.redact(item.root);
        return model;
      });
  }

  /**
   * Every public call: refusals the server made (RequestRefused) become one line saying what to change, and no
   * message or hint leaves with the API key in it.
   */
  private async guard<T>(op: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const mapped = error instanceof RequestRefused ? this.refusal(op, error) : error;
      if (mapped instanceof EvalpipeError) {
        mapped.message = this.redactor.redact(mapped.message);
        if (mapped.hint !== undefined) Object.defineProperty(mapped, 'hint', { value: this.redactor.redact(mapped.hint) });
      }
      throw mapped;
    }
  }

  private refusal(op: string, refused: RequestRefused): EvalpipeError {
    const { failure } = refused;
    const base = this.options.config.base_url;
    const variable = this.options.settings.apiKeyEnv;
    const hasKey = this.options.apiKey !== undefined && this.options.apiKey !== '';
    if (failure.status === 401 || failure.status === 403) {
      return new RemoteServerError(`the server at ${base} refused ${hasKey ? 'the API key' : 'a request without an API key'} (${failure.message})`, {
        hint: hasKey
          ? `put a valid key in $${variable} (or name another variable with --api-key-env)`
          : `set the key in $${variable} (or name the variable holding it with --api-key-env)`,
      });
    }
    if (failure.status === 404) {
      return new RemoteServerError(`the server at ${base} has no such endpoint or model (${failure.message})`, {
        hint: `is --base-url the OpenAI-compatible root (it usually ends in /v1)${op === 'generate' && this.options.config.chat ? ', and does the server serve /v1/chat/completions' : ''}?`,
      });
    }
    return new RemoteRequestError(
      op,
      'bad_request',
      `the server refused the request (${failure.message})`,
      'check the options you passed (--max-new-tokens, --stop, -n)',
    );
  }
}

/** --backend openai: a model served by an OpenAI-compatible server (docs/openai-backend.md). */
export const openAiBackend: BackendKind = {
  name: 'openai',
  description: 'a model served by an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp server, OpenAI) at --base-url',
  options: OPENAI_OPTIONS,
  unsupportedTasks: ['latency'],
  configFrom: (flags) => ({ ...openAiConfigFrom(flags) }),
  settingsFrom: (flags) => ({ ...openAiSettingsFrom(flags) }),
  start: async (options) => {
    // configFrom and settingsFrom made these from the flags (run-options.ts); a run config without them has no URL.
    const config = (options.config as OpenAiConfig | undefined) ?? openAiConfigFrom({});
    const settings = (options.settings as OpenAiSettings | undefined) ?? openAiSettingsFrom({});
    return new OpenAiBackend({ config, settings, apiKey: process.env[settings.apiKeyEnv] });
  },
};
