import { EngineRequestError } from '../backends/engine/engine-errors.js';
import { EvalpipeError } from '../util/errors.js';

/**
 * What a stage does when the backend refuses one request but is still up (docs/results.md: failures are data):
 * `split` — out of memory: run the same units in smaller pieces; `isolate` — any other per-unit error: run each
 * unit alone, and record a unit that still fails as that unit's failure; `stop` — the request itself is wrong
 * (a bad option, no model, an unsupported mode): every unit would fail the same way, so the stage stops.
 * A dead backend (EngineProcessError) or a cancelled run is never a unit's failure.
 */
export type UnitErrorAction = 'split' | 'isolate' | 'stop';

export function unitErrorAction(error: unknown): UnitErrorAction {
  if (!(error instanceof EngineRequestError)) return 'stop';
  if (error.type === 'oom') return 'split';
  if (error.type === 'internal') return 'isolate';
  return 'stop';
}

/** The one line a unit's failure record keeps: the engine's message, without the hint. */
export function unitErrorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** How many units in a row may fail alone before the stage decides the engine, not the units, is at fault. */
export const MAX_CONSECUTIVE_UNIT_FAILURES = 5;

/**
 * Counts units that failed alone with no success between them; past MAX_CONSECUTIVE_UNIT_FAILURES the stage stops
 * with the last error, so a broken engine is not turned into a run of recorded failures.
 */
export class UnitFailureBreaker {
  private consecutive = 0;

  constructor(private readonly stage: string) {}

  succeeded(): void {
    this.consecutive = 0;
  }

  failed(unit: string, error: unknown): void {
    this.consecutive += 1;
    if (this.consecutive >= MAX_CONSECUTIVE_UNIT_FAILURES) {
      throw new EvalpipeError(
        'unit_failures',
        `${this.stage}: ${this.consecutive} units in a row failed in the engine (last: ${unit}: ${unitErrorMessage(error)}); stopping rather than recording them all as failures`,
        { hint: 'run again with --verbose to see the engine log; the units recorded so far are kept and the same command resumes', cause: error },
      );
    }
  }
}
