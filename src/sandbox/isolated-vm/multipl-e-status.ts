import type { JsExecution } from './js-executor.js';

/** MultiPL-E's status words for a JavaScript/TypeScript program (its evaluation's eval_javascript / eval_ts). */
export type MultiplEStatus = 'OK' | 'Timeout' | 'AssertionError' | 'SyntaxError' | 'ReferenceError' | 'Exception';

/**
 * Our verdict in MultiPL-E's words, so it can be compared with theirs: OK only for a pass; tsc refusing the program
 * is their "SyntaxError" (they never run it); an uncaught AssertionError, SyntaxError or ReferenceError by name
 * (they look for ERR_ASSERTION, then those names, in Node's stderr); anything else, an oom included (Node aborts
 * on a full heap), "Exception".
 */
export function multiplEStatusOf(execution: Pick<JsExecution, 'status' | 'exceptionType'>): MultiplEStatus {
  if (execution.status === 'passed') return 'OK';
  if (execution.status === 'timeout') return 'Timeout';
  if (execution.exceptionType === 'TypeScriptError') return 'SyntaxError';
  if (execution.exceptionType === 'AssertionError' || execution.exceptionType === 'SyntaxError' || execution.exceptionType === 'ReferenceError') {
    return execution.exceptionType;
  }
  return 'Exception';
}
