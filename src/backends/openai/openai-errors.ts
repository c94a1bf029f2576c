import { EvalpipeError } from '../../util/errors.js';
import { EngineRequestError } from '../engine/engine-errors.js';
import type { EngineErrorType } from '../engine/protocol.js';

/**
 * The server cannot be used as asked: unreachable, the key refused, the model not served, it stopped answering
 * (the circuit breaker opened) or it answers in a shape we cannot read. The run stops with one line saying what to
 * change; finished records are kept and the same command resumes.
 */
export class RemoteServerError extends EvalpipeError {
  constructor(message: string, options: { hint: string; cause?: unknown }) {
    super('remote_server', message, options);
  }
}

/**
 * A typed refusal of one op, as the engine's (EngineRequestError, so the stages treat `unsupported` and
 * `bad_request` as they do the engine's), worded `openai <op>: ...`.
 */
export class RemoteRequestError extends EngineRequestError {
  constructor(op: string, type: EngineErrorType, message: string, hint: string) {
    super(op, type, message, hint);
    this.message = `openai ${op}: ${message}`;
  }
}
