import { createHash } from 'node:crypto';
import type { GenerateCallOptions } from '../model-backend.js';
import type { GeneratedSample, GenerateParams, GenerateRequest, GenerateResult } from '../engine/protocol.js';
import { chatMessages, completionFromReply } from './chat-prompt.js';
import { RemoteRequestError } from './openai-errors.js';
import { RequestRefused, type AttemptContext, type RequestRunner } from './request-runner.js';
import type { ServerConnection } from './server-connection.js';
import { contextRefusal, type ServerQuirks } from './server-quirks.js';
import { cutAtStop } from './stop-strings.js';

export interface GenerationModel {
  connection: ServerConnection;
  runner: RequestRunner;
  quirks: ServerQuirks;
  model: string;
  /** --chat: /v1/chat/completions with the instruct prompt, the completion taken from the reply's code. */
  chat: boolean;
}

/** One sample as it streams in. */
interface Pending {
  index: number;
  text: string;
  chunks: number;
  finish: string | null;
  /** vLLM's stop_reason / SGLang's matched_stop: the stop string (or token id) that ended it. */
  stopReason: unknown;
}

/**
 * The generate op over a remote model. Each request's samples are asked for with `n` (split where the server caps
 * it: an error naming n, or fewer choices than asked), streamed, and each sample handed to `onSample` once as soon
 * as its choice finishes. A failed or cut-off attempt is retried for the samples that did not arrive only, so no
 * sample is emitted twice. Stop strings are sent to the server and applied again on our side exactly as the engine
 * applies them; finish reasons are mapped to the engine's (stop with the string that cut, eos, length).
 */
export async function generateRemotely(model: GenerationModel, params: GenerateParams, options: GenerateCallOptions = {}): Promise<GenerateResult> {
  const keys = new Set<string>();
  for (const request of params.requests) {
    if (keys.has(request.key)) throw badRequest(`request key ${JSON.stringify(request.key)} appears twice`, 'give each request a unique key');
    keys.add(request.key);
    const indices = request.samples ?? range(params.n);
    if (params.temperature === 0 && (params.n > 1 || indices.some((index) => index !== 0))) {
      throw badRequest(`greedy decoding (temperature 0) makes one sample, but n is ${params.n}`, 'use n = 1 for greedy, or a temperature above 0');
    }
  }
  if (params.add_bos) {
    throw new RemoteRequestError(
      'generate',
      'unsupported',
      'add_bos is not supported with --backend openai (the server tokenizes the prompt)',
      'leave add_bos out',
    );
  }
  let count = 0;
  const emit = (sample: GeneratedSample): void => {
    count += 1;
    options.onSample?.(sample);
  };
  await Promise.all(params.requests.map((request) => generateRequest(model, params, request, emit, options.signal)));
  return { count };
}

async function generateRequest(
  model: GenerationModel,
  params: GenerateParams,
  request: GenerateRequest,
  emit: (sample: GeneratedSample) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const wanted = [...new Set(request.samples ?? range(params.n))];
  const emitted = new Set<number>();
  let maxTokens = params.max_new_tokens;
  const once = (sample: GeneratedSample): void => {
    if (emitted.has(sample.sample_index)) return;
    emitted.add(sample.sample_index);
    emit(sample);
  };
  for (let round = 0; ; round += 1) {
    const missing = wanted.filter((index) => !emitted.has(index));
    if (missing.length === 0) return;
    const before = emitted.size;
    const cap = model.quirks.maxN ?? missing.length;
    const chunks: number[][] = [];
    for (let start = 0; start < missing.length; start += cap) chunks.push(missing.slice(start, start + cap));
    await Promise.all(
      chunks.map(async (chunk) => {
        let sent = { n: 0, stops: 0, seed: false, streamUsage: false };
        try {
          await model.runner.run(
            `generate ${request.key}`,
            async (attempt) => {
              // Only the samples of this chunk still missing, at most the cap known now.
              const ask = chunk.filter((index) => !emitted.has(index)).slice(0, model.quirks.maxN ?? chunk.length);
              if (ask.length === 0) return;
              const { quirks } = model;
              sent = { n: ask.length, stops: model.chat ? 0 : sentStops(quirks, params.stop).length, seed: quirks.sendSeed, streamUsage: quirks.streamUsage };
              await streamSamples(model, params, request, ask, maxTokens, attempt, once);
            },
            {
              signal,
              adapt: (failure) => {
                const context = contextRefusal(failure);
                if (context) {
                  if (context.room !== undefined && context.room >= 1 && context.room < maxTokens) {
                    maxTokens = context.room;
                    return true;
                  }
                  return false;
                }
                return model.quirks.adaptGenerate(failure, sent);
              },
            },
          );
        } catch (error) {
          if (!(error instanceof RequestRefused) || !contextRefusal(error.failure)) throw error;
          // The prompt leaves the model no room for a token: as the engine, a sample with an empty completion.
          for (const index of chunk) {
            once({ key: request.key, sample_index: index, completion: '', finish_reason: 'prompt_too_long', stop_sequence: null, n_new_tokens: 0 });
          }
        }
      }),
    );
    if (emitted.size === before && round > 0) {
      throw new RemoteRequestError('generate', 'internal', `the server returned no samples for ${request.key}`, 'check the server log');
    }
  }
}

/** One streamed request for the samples `ask` (choice i is sample ask[i]). */
async function streamSamples(
  model: GenerationModel,
  params: GenerateParams,
  request: GenerateRequest,
  ask: number[],
  maxTokens: number,
  attempt: AttemptContext,
  emit: (sample: GeneratedSample) => void,
): Promise<void> {
  const { quirks } = model;
  const stops = model.chat ? [] : params.stop;
  const sentStopList = sentStops(quirks, stops);
  const common = {
    model: model.model,
    n: ask.length,
    temperature: params.temperature,
    top_p: params.top_p,
    max_tokens: maxTokens,
    stream: true as const,
    ...(sentStopList.length > 0 ? { stop: [...sentStopList] } : {}),
    ...(quirks.sendSeed ? { seed: requestSeed(params.seed, request.key, ask[0]!) } : {}),
    ...(quirks.streamUsage ? { stream_options: { include_usage: true } } : {}),
  };
  const requestOptions = { signal: attempt.signal, maxRetries: 0 };
  const stream = model.chat
    ? await model.connection.client.chat.completions.create({ ...common, messages: chatMessages(request.prompt) }, requestOptions)
    : await model.connection.client.completions.create({ ...common, prompt: request.prompt }, requestOptions);
  const pending = new Map<number, Pending>();
  let completionTokens: number | undefined;
  const finished: Pending[] = [];
  const flush = (): void => {
    for (const sample of finished.splice(0)) {
      const tokens = ask.length === 1 && completionTokens !== undefined ? completionTokens : sample.chunks;
      emit(toSample(model, params, request, ask[sample.index]!, sample, tokens, stops));
      attempt.progressed();
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<StreamChunk>) {
      attempt.touch();
      if (chunk.usage && typeof chunk.usage.completion_tokens === 'number') completionTokens = chunk.usage.completion_tokens;
      for (const choice of chunk.choices ?? []) {
        if (!Number.isInteger(choice.index) || choice.index < 0 || choice.index >= ask.length) continue;
        let sample = pending.get(choice.index);
        if (!sample) {
          sample = { index: choice.index, text: '', chunks: 0, finish: null, stopReason: null };
          pending.set(choice.index, sample);
        }
        if (sample.finish !== null) continue;
        const piece = model.chat ? choice.delta?.content : choice.text;
        if (typeof piece === 'string') {
          sample.text += piece;
          if (piece !== '') sample.chunks += 1;
        }
        if (choice.finish_reason) {
          sample.finish = choice.finish_reason;
          sample.stopReason = choice.stop_reason ?? choice.matched_stop ?? null;
          finished.push(sample);
          // A one-sample request waits for the usage chunk (its exact token count) at the end of the stream.
          if (ask.length > 1) flush();
        }
      }
    }
    attempt.throwIfAborted();
  } finally {
    flush();
  }
  const done = [...pending.values()].filter((sample) => sample.finish !== null).length;
  const unfinished = [...pending.values()].filter((sample) => sample.finish === null).length;
  if (unfinished > 0 || done === 0) throw new Error(`the stream ended with ${unfinished || ask.length} of ${ask.length} samples unfinished`);
  // Every sample that appeared finished, but fewer appeared than asked: the server caps n there.
  if (done < ask.length) quirks.cappedAt(done);
}

interface StreamChunk {
  choices?: {
    index: number;
    text?: string;
    delta?: { content?: string | null };
    finish_reason?: string | null;
    stop_reason?: unknown;
    matched_stop?: unknown;
  }[];
  usage?: { completion_tokens?: number } | null;
}

function toSample(
  model: GenerationModel,
  params: GenerateParams,
  request: GenerateRequest,
  sampleIndex: number,
  sample: Pending,
  tokens: number,
  stops: readonly string[],
): GeneratedSample {
  const base = { key: request.key, sample_index: sampleIndex, n_new_tokens: tokens };
  const length = sample.finish === 'length';
  if (model.chat) {
    return { ...base, completion: completionFromReply(request.prompt, sample.text), finish_reason: length ? 'length' : 'eos', stop_sequence: null };
  }
  const cut = cutAtStop(sample.text, stops);
  if (cut.stop !== null) return { ...base, completion: cut.text, finish_reason: 'stop', stop_sequence: cut.stop };
  if (length) return { ...base, completion: cut.text, finish_reason: 'length', stop_sequence: null };
  // The server stopped: at one of our stop strings when it says which (vLLM stop_reason, SGLang matched_stop),
  // else the model ended the text (EOS), or a server that does not say which stop string matched.
  const named = typeof sample.stopReason === 'string' ? stops.find((stop) => stop === sample.stopReason) : undefined;
  if (named !== undefined) return { ...base, completion: cut.text, finish_reason: 'stop', stop_sequence: named };
  void params;
  return { ...base, completion: cut.text, finish_reason: 'eos', stop_sequence: null };
}

/**
 * The seed of one request: derived from the run's seed, the problem and the first sample index it asks for, so an
 * uninterrupted run is reproducible on a server that honours seeds (a retry or a split request asks with another).
 */
export function requestSeed(seed: number, key: string, firstIndex: number): number {
  const digest = createHash('sha256').update(`${seed}\0${key}\0${firstIndex}`).digest();
  return digest.readUInt32LE(0) & 0x7fffffff;
}

/** The stop strings a request carries: all, or as many as the server takes (they are applied on our side too). */
function sentStops(quirks: ServerQuirks, stops: readonly string[]): readonly string[] {
  return quirks.stopLimit === undefined ? stops : stops.slice(0, quirks.stopLimit);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, index) => index);
}

function badRequest(message: string, hint: string): RemoteRequestError {
  return new RemoteRequestError('generate', 'bad_request', message, hint);
}
