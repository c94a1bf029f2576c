/** What one benchmark request measured (milliseconds from its own start). */
export interface RequestTiming {
  ok: boolean;
  /** The server's or client's message when `ok` is false. */
  error?: string;
  promptTokens: number | null;
  outputTokens: number;
  /** Time to the first chunk that carried a choice; null when none did. */
  ttftMs: number | null;
  latencyMs: number;
  /** Gaps between consecutive chunks (inter-token latency when the server streams token by token). */
  itlMs: number[];
}

export interface Distribution {
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** One concurrency level's figures, after vLLM's benchmark_serving: throughputs and latency distributions. */
export interface ServingLevel {
  concurrency: number;
  requests: number;
  completed: number;
  failed: number;
  /** The first few failures' messages. */
  errors: string[];
  duration_s: number;
  request_throughput: number;
  output_token_throughput: number;
  total_token_throughput: number | null;
  output_tokens: number;
  prompt_tokens: number | null;
  ttft_ms: Distribution;
  /** Time per output token after the first: (latency − TTFT) / (output tokens − 1), per request. */
  tpot_ms: Distribution;
  itl_ms: Distribution;
  e2e_ms: Distribution;
}

/** The q-quantile (0..1) of sorted values, linearly interpolated between closest ranks (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? null : sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { mean, p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99) };
}

/** Time per output token of one request, or null when it produced fewer than two tokens. */
export function timePerOutputToken(timing: RequestTiming): number | null {
  if (timing.ttftMs === null || timing.outputTokens < 2) return null;
  return (timing.latencyMs - timing.ttftMs) / (timing.outputTokens - 1);
}

/** A level's figures from its requests' timings and the wall time the whole level took. */
export function summariseLevel(concurrency: number, timings: readonly RequestTiming[], durationS: number): ServingLevel {
  const done = timings.filter((timing) => timing.ok);
  const outputTokens = done.reduce((sum, timing) => sum + timing.outputTokens, 0);
  const promptKnown = done.every((timing) => timing.promptTokens !== null);
  const promptTokens = promptKnown ? done.reduce((sum, timing) => sum + (timing.promptTokens ?? 0), 0) : null;
  const perSecond = (count: number) => (durationS > 0 ? count / durationS : 0);
  return {
    concurrency,
    requests: timings.length,
    completed: done.length,
    failed: timings.length - done.length,
    errors: [...new Set(timings.filter((timing) => !timing.ok).map((timing) => timing.error ?? 'unknown error'))].slice(0, 5),
    duration_s: durationS,
    request_throughput: perSecond(done.length),
    output_token_throughput: perSecond(outputTokens),
    total_token_throughput: promptTokens === null ? null : perSecond(outputTokens + promptTokens),
    output_tokens: outputTokens,
    prompt_tokens: promptTokens,
    ttft_ms: distribution(done.flatMap((timing) => (timing.ttftMs === null ? [] : [timing.ttftMs]))),
    tpot_ms: distribution(
      done.flatMap((timing) => {
        const tpot = timePerOutputToken(timing);
        return tpot === null ? [] : [tpot];
      }),
    ),
    itl_ms: distribution(done.flatMap((timing) => timing.itlMs)),
    e2e_ms: distribution(done.map((timing) => timing.latencyMs)),
  };
}
