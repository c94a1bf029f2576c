import { EvalpipeError } from '../../util/errors.js';
import type { EngineErrorType } from './protocol.js';

const HINTS: Record<EngineErrorType, string> = {
  bad_request: 'check the options you passed',
  not_found: 'check the model id or path (a local directory needs config.json, *.safetensors and tokenizer.json)',
  unsupported: 'choose a supported architecture, --quant or --attn (see `evalpipe run --help`)',
  oom: 'use a smaller --batch-size, --max-length or a more compact --quant',
  not_loaded: 'this is a bug in evalpipe: a model must be loaded before this request',
  internal: 'this is a bug in the engine: run again with --verbose and report it',
};

/** The engine answered a request with a typed error; the process is still up. */
export class EngineRequestError extends EvalpipeError {
  readonly type: EngineErrorType;
  readonly op: string;

  constructor(op: string, type: EngineErrorType, message: string, hint?: string) {
    super(`engine_${type}`, `engine ${op}: ${message}`, { hint: hint ?? HINTS[type] ?? HINTS.internal });
    this.type = type;
    this.op = op;
  }
}

/** The engine process could not start, died, or stopped answering. Carries the tail of its stderr. */
export class EngineProcessError extends EvalpipeError {
  readonly stderrTail: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;

  constructor(message: string, details: { stderrTail: string; exitCode?: number | null; signal?: NodeJS.Signals | null; hint?: string; cause?: unknown }) {
    const tail = details.stderrTail.trim();
    super('engine_dead', tail ? `${message}\n--- engine stderr (last lines) ---\n${tail}` : message, {
      hint: details.hint ?? 'run `bash scripts/setup.sh` to (re)create the Python environment, then resume the same command',
      cause: details.cause,
    });
    this.stderrTail = details.stderrTail;
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
  }
}

/**
 * A request refused before it was sent: its params break schemas/engine/<op>.json (or the op does not exist).
 * `type` is 'bad_request', as the engine would have answered; `field` names the place ("requests[0].samples").
 */
export class EngineRequestInvalidError extends EngineRequestError {
  readonly field: string;

  constructor(op: string, message: string, details: { field: string; hint?: string }) {
    super(op, 'bad_request', `${message} (request not sent)`, details.hint ?? 'fix the request: its params must match the op schema');
    this.field = details.field;
  }
}

/** The engine answered something its schema (schemas/engine/<op>.json) does not allow: the two sides disagree. */
export class EngineProtocolError extends EvalpipeError {
  readonly op: string;

  constructor(op: string, message: string) {
    super('engine_protocol', `engine ${op}: ${message}`, {
      hint: 'the engine and this CLI speak different versions of the protocol: run both from the same evalpipe checkout',
    });
    this.op = op;
  }
}
