import { HubApiError } from '@huggingface/hub';
import { DataError, UsageError, type EvalpipeError } from '../util/errors.js';

/** A download stream failed; the hub client hands us only the message text. */
export class HubStreamError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'HubStreamError', enumerable: false });
  }

  /** HTTP failures read "Api error with status N…"; anything else is the connection itself. */
  get isNetwork(): boolean {
    return !/^Api error with status \d+/.test(this.message) && !/status \d{3}/.test(this.message);
  }

  get statusCode(): number | undefined {
    const match = /status (\d{3})/.exec(this.message);
    return match ? Number(match[1]) : undefined;
  }
}

/** True when the hub could not be reached at all (DNS, refused, reset, timeout), as opposed to an HTTP answer. */
export function isNetworkFailure(error: unknown): boolean {
  if (error instanceof HubApiError) return false;
  if (error instanceof HubStreamError) return error.isNetwork;
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
  if (error instanceof HubStreamError) {
    const status = error.statusCode;
    if (status === undefined) {
      return new DataError(`the download of ${what} failed: ${error.message}`, { hint: 'run the command again; nothing partial was kept', cause: error });
    }
    return explainStatus(status, error.message, error, what, repo, revision);
  }
  if (!(error instanceof HubApiError)) return undefined;
  return explainStatus(error.statusCode, error.message, error, what, repo, revision);
}

function explainStatus(statusCode: number, message: string, error: Error, what: string, repo: string, revision: string): EvalpipeError {
  if (statusCode === 401 || statusCode === 403) {
    return new DataError(`the hub refused access to ${what} (HTTP ${statusCode})`, {
      hint: `if ${repo} is gated or private, accept its terms on the hub and set HF_TOKEN to a token that can read it`,
      cause: error,
    });
  }
  if (statusCode === 404) {
    return new UsageError(`the hub has no ${what} (HTTP 404)`, {
      hint: `check the data set id ${repo} and --revision ${revision}, or give a local .jsonl/.jsonl.gz/.parquet/.arrow file`,
      cause: error,
    });
  }
  return new DataError(`the hub failed on ${what}: HTTP ${statusCode} ${message}`, {
    hint: 'try again later, or give a local .jsonl/.jsonl.gz/.parquet/.arrow file',
    cause: error,
  });
}
