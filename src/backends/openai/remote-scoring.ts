import type { ScoreCallOptions } from '../model-backend.js';
import type { ScoredRow, ScoreParams, ScoreResult } from '../engine/protocol.js';
import { RemoteRequestError } from './openai-errors.js';
import { RequestRefused, type RequestRunner } from './request-runner.js';
import type { ServerConnection } from './server-connection.js';
import type { ServerQuirks } from './server-quirks.js';
import { contextRefusal } from './server-quirks.js';
import type { TextTokenizer } from './tokenization.js';
import { planLmEvalWindows, planWindows, type Window } from './windows.js';

const DEFAULT_MAX_LENGTH = 4096;

export interface ScoringModel {
  connection: ServerConnection;
  runner: RequestRunner;
  quirks: ServerQuirks;
  model: string;
  /** The server's max_model_len; null when it did not say. */
  maxModelLen: number | null;
  bosTokenId: number | null;
  /** The texts' tokenizer (server /tokenize or --tokenizer); undefined when there is neither. */
  tokenizer: TextTokenizer | undefined;
}

const NO_LOGPROBS_HINT =
  'this server cannot score perplexity: skip it with --tasks humaneval (vLLM and SGLang return prompt log-probabilities; OpenAI, TGI and llama.cpp do not)';

/**
 * The score op over a remote model, with the engine's rules (docs/engine-protocol.md#score): each text tokenized
 * without special tokens, the BOS put in front with add_bos, the same window plans (windows.ts), and every window
 * sent as a token-id prompt to /v1/completions with `echo: true, logprobs: 1, max_tokens: 0` (1 where the server
 * refuses 0): the server answers each prompt token's log-probability given the tokens before it, and the window's
 * scored positions are summed into the row's NLL. Rows come back in request order with the engine's fields.
 */
export async function scoreRemotely(model: ScoringModel, params: ScoreParams, options: ScoreCallOptions = {}): Promise<ScoreResult> {
  const windowing = params.windowing ?? 'evalpipe';
  const lmEval = windowing === 'lm-eval';
  const modelMax = model.maxModelLen ?? DEFAULT_MAX_LENGTH;
  // lm-eval windows run the model on max_length tokens plus a target-only id: the server sees max_length + 1.
  const extra = lmEval ? 1 : 0;
  const maxLength = params.max_length ?? Math.min(modelMax - extra, DEFAULT_MAX_LENGTH);
  if (maxLength + extra > modelMax) {
    const allowed = modelMax - extra;
    throw badRequest(
      lmEval
        ? `max_length ${maxLength} with windowing lm-eval sends ${maxLength + 1} tokens per window, more than the server's max_model_len of ${modelMax}`
        : `max_length ${maxLength} exceeds the model's maximum of ${modelMax} positions (the server's max_model_len)`,
      `use --max-length ${allowed} or less`,
    );
  }
  if (maxLength < 2) throw badRequest(`max_length = ${maxLength} is out of range`, 'use --max-length 2 or more');
  const stride = params.stride ?? maxLength;
  if (stride < 1 || stride > maxLength) throw badRequest(`stride = ${stride} is out of range`, `use a value in [1, ${maxLength}]`);
  if (lmEval && params.stride !== undefined && params.stride !== null && stride !== maxLength) {
    throw badRequest(`stride ${stride} does not apply to windowing lm-eval (its windows advance by max_length)`, 'leave stride out with windowing lm-eval');
  }
  if (lmEval && params.add_bos === false) {
    throw badRequest('windowing lm-eval always scores the first token after the prefix token; add_bos false contradicts it', 'leave add_bos out');
  }
  const addBos = lmEval ? true : (params.add_bos ?? model.bosTokenId !== null);
  if (addBos && model.bosTokenId === null) {
    throw badRequest(
      "add_bos is true but the model's BOS token id is not known: the server's /tokenize shows none",
      "pass --tokenizer (the model's tokenizer.json with its config.json, or its directory) so the BOS is known, or --no-bos",
    );
  }
  const seen = new Set<number>();
  for (const row of params.rows) {
    if (seen.has(row.index)) throw badRequest(`row index ${row.index} appears twice`, 'give each row a unique index');
    seen.add(row.index);
    if (!row.text) throw badRequest(`row ${row.index} is empty`, 'drop empty rows before scoring');
  }
  const tokenizer = model.tokenizer;
  if (!tokenizer) {
    throw new RemoteRequestError(
      'score',
      'unsupported',
      "the server has no /tokenize and no --tokenizer was given: perplexity windows need the texts' token ids",
      'pass --tokenizer (a tokenizer.json, its model directory or preset:tiny-starcoder2), or skip perplexity with --tasks humaneval',
    );
  }
  const ids = await tokenizer.encode(
    params.rows.map((row) => row.text),
    options.signal,
  );
  const sequences = params.rows.map((row, r) => {
    const tokens = ids[r] ?? [];
    if (tokens.length === 0) throw badRequest(`row ${row.index} has no tokens after tokenization`, 'drop the row');
    return addBos ? [model.bosTokenId!, ...tokens] : tokens;
  });
  const plans: Window[][] = sequences.map((sequence) =>
    lmEval ? planLmEvalWindows(sequence.length - 1, maxLength) : planWindows(sequence.length, maxLength, stride),
  );
  const total = plans.reduce((sum, plan) => sum + plan.length, 0);
  let done = 0;
  const sums = await Promise.all(
    plans.map((plan, r) =>
      Promise.all(
        plan.map(async (window) => {
          const logprobs = await promptLogprobs(model, sequences[r]!.slice(window.begin, window.end), options.signal);
          let sum = 0;
          for (let position = window.firstScored; position < window.end; position += 1) sum += logprobs[position - window.begin]!;
          done += 1;
          options.onProgress?.({ done, total, unit: 'windows' });
          return { sum, scored: window.end - window.firstScored };
        }),
      ),
    ),
  );
  const rows: ScoredRow[] = params.rows.map((row, r) => {
    let nll = 0;
    let scored = 0;
    for (const window of sums[r]!) {
      nll -= window.sum;
      scored += window.scored;
    }
    if (!Number.isFinite(nll))
      throw new RemoteRequestError('score', 'unsupported', `row ${row.index} has a non-finite NLL`, 'the server returned a log-probability of -inf or NaN');
    return {
      index: row.index,
      nll_sum: nll,
      n_scored_tokens: scored,
      n_tokens: sequences[r]!.length - (addBos ? 1 : 0),
      n_bytes: Buffer.byteLength(row.text, 'utf8'),
      n_windows: plans[r]!.length,
    };
  });
  return { rows, max_length: maxLength, stride: lmEval ? maxLength : stride, add_bos: addBos, windowing };
}

interface EchoChoice {
  logprobs?: { token_logprobs?: (number | null)[] | null } | null;
}

/** Each prompt token's log-probability given the tokens before it (index 0 has none and is never read). */
async function promptLogprobs(model: ScoringModel, prompt: number[], signal: AbortSignal | undefined): Promise<number[]> {
  let sent: number = model.quirks.scoreMaxTokens;
  try {
    return await model.runner.run(
      'score',
      async (attempt) => {
        sent = model.quirks.scoreMaxTokens;
        const reply = await model.connection.client.completions.create(
          { model: model.model, prompt, echo: true, logprobs: 1, max_tokens: sent, temperature: 0 },
          { signal: attempt.signal, maxRetries: 0 },
        );
        const choice = reply.choices?.[0] as EchoChoice | undefined;
        if (!choice) throw new Error('the reply has no choices');
        const values = choice.logprobs?.token_logprobs;
        if (!Array.isArray(values) || values.length < prompt.length || values.slice(1, prompt.length).some((value) => typeof value !== 'number')) {
          throw new RemoteRequestError(
            'score',
            'unsupported',
            `the server returned no log-probabilities for the prompt's tokens (echo: true, logprobs: 1 gave ${Array.isArray(values) ? `${values.filter((value) => typeof value === 'number').length} of ${prompt.length}` : 'none'})`,
            NO_LOGPROBS_HINT,
          );
        }
        return values as number[];
      },
      { signal, adapt: (failure) => !contextRefusal(failure) && model.quirks.adaptScore(failure, sent) },
    );
  } catch (error) {
    if (!(error instanceof RequestRefused)) throw error;
    const failure = error.failure;
    if (contextRefusal(failure)) {
      throw badRequest(`the server refused a window of ${prompt.length} tokens as too long (${failure.message})`, 'use a smaller --max-length');
    }
    if (failure.status === 401 || failure.status === 403 || failure.status === 404) throw error;
    throw new RemoteRequestError(
      'score',
      'unsupported',
      `the server refused a scoring request (echo: true, logprobs: 1): ${failure.message}`,
      NO_LOGPROBS_HINT,
    );
  }
}

function badRequest(message: string, hint: string): RemoteRequestError {
  return new RemoteRequestError('score', 'bad_request', message, hint);
}
