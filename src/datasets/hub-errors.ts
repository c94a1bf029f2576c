import { HubApiError } from '@huggingface/hub';
import { DataError, UsageError, type EvalpipeError } from '../util/errors.js';

/** True when the hub could not be reached at all (DNS, refused, reset, timeout), as opposed to an HTTP answer. */
export function isNetworkFailure(error: unknown): boolean {
  if (error instanceof HubApiError) return false;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'ConnectTimeoutError')) return true;
  let current: unknown = error;
  while (current instanceof Error) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|ETIMEDOUT|UND_ERR_\w+)$/.test(code)) return true;
    if (current instanceof TypeError && current.message === 'fetch failed') return true;
    current = current.cause;
  }
  return false;
}

/** Turn a hub HTTP error into one line that says what to do. */
export function explainHubError(error: unknown, what: string, repo: string, revision: string): EvalpipeError | undefined {
  if (!(error instanceof HubApiError)) return undefined;
  if (error.statusCode === 401 || error.statusCode === 403) {
    return new DataError(`the hub refused access to ${what} (HTTP ${error.statusCode})`, {
      hint: `if ${repo} is gated or private, accept its terms on the hub and set HF_TOKEN to a token that can read it`,
      cause: error,
    });
  }
  if (error.statusCode === 404) {
    return new UsageError(`the hub has no ${what} (HTTP 404)`, {
      hint: `check the data set id ${repo} and --revision ${revision}, or give a local .jsonl/.jsonl.gz/.parquet/.arrow file`,
      cause: error,
    });
  }
  return new DataError(`the hub failed on ${what}: HTTP ${error.statusCode} ${error.message}`, {
    hint: 'try again later, or give a local .jsonl/.jsonl.gz/.parquet/.arrow file',
    cause: error,
  });
}
