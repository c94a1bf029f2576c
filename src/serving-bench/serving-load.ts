import type OpenAI from 'openai';
import pLimit from 'p-limit';
import type { RequestTiming } from './serving-stats.js';

/** What every benchmark request asks for. */
export interface ServingRequestShape {
  model: string;
  maxTokens: number;
  /** Ask the server to ignore EOS (vLLM's and our server's `ignore_eos`), so every request makes maxTokens. */
  ignoreEos: boolean;
  temperature: number;
  timeoutMs: number;
}

/**
 * One streamed completion, timed from the moment it is sent: time to the first chunk, the gaps between chunks, the
 * end, and the token counts the server reports (`stream_options.include_usage`; without them the chunks are
 * counted, one token each, as servers that stream token by token send them). A failure is a timing with
 * `ok: false`, never an exception: one bad request does not end a level.
 */
export async function timeOneRequest(client: OpenAI, shape: ServingRequestShape, prompt: string, signal?: AbortSignal): Promise<RequestTiming> {
  const started = performance.now();
  let first: number | null = null;
  let last = started;
  const gaps: number[] = [];
  let chunks = 0;
  let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
  try {
    const body = {
      model: shape.model,
      prompt,
      max_tokens: shape.maxTokens,
      temperature: shape.temperature,
      stream: true as const,
      stream_options: { include_usage: true },
      ...(shape.ignoreEos ? { ignore_eos: true } : {}),
    };
    const stream = await client.completions.create(body, { signal, timeout: shape.timeoutMs });
    for await (const chunk of stream) {
      const now = performance.now();
      if (chunk.usage) usage = chunk.usage;
      // As benchmark_serving counts them: every chunk that carries a choice, whether or not its text is empty (a
      // token that completes no character yet, the closing chunk with the finish reason).
      if (!chunk.choices || chunk.choices.length === 0) continue;
      chunks += 1;
      if (first === null) first = now;
      else gaps.push(now - last);
      last = now;
    }
    const ended = performance.now();
    return {
      ok: true,
      promptTokens: usage?.prompt_tokens ?? null,
      outputTokens: usage?.completion_tokens ?? chunks,
      ttftMs: first === null ? null : first - started,
      latencyMs: ended - started,
      itlMs: gaps,
    };
  } catch (error) {
    signal?.throwIfAborted();
    return {
      ok: false,
      error: error instanceof Error ? error.message : String(error),
      promptTokens: null,
      outputTokens: 0,
      ttftMs: null,
      latencyMs: performance.now() - started,
      itlMs: [],
    };
  }
}

/** `requests` completions with at most `concurrency` in flight (a closed loop, as benchmark_serving's --max-concurrency). */
export async function runLevel(
  client: OpenAI,
  shape: ServingRequestShape,
  prompts: readonly string[],
  options: { concurrency: number; requests: number; signal?: AbortSignal },
): Promise<{ timings: RequestTiming[]; durationS: number }> {
  const limit = pLimit(options.concurrency);
  const started = performance.now();
  const timings = await Promise.all(
    Array.from({ length: options.requests }, (_, index) => limit(() => timeOneRequest(client, shape, prompts[index % prompts.length]!, options.signal))),
  );
  return { timings, durationS: (performance.now() - started) / 1000 };
}
