import { VERDICT_MODES, type VerdictMode } from '../../sandbox/container-spec.js';
import { UsageError } from '../../util/errors.js';

/** The `--verdicts` option, the same on `run`, `sweep`, `execute` and `sandbox check`. */
export const VERDICTS_OPTION = {
  type: 'string',
  describe:
    "How candidates are judged: `default` (human-eval's: tests and candidate in one process) or `isolated` (also with the tests in a separate trusted process, as another uid, calling the candidate with plain data; that verdict counts, and samples that pass only the default way are reported as suspect) [default: default]",
} as const;

/** The mode a --verdicts value names; one clear line for anything else. */
export function parseVerdictMode(value: string | undefined): VerdictMode {
  if (value === undefined) return 'default';
  if ((VERDICT_MODES as readonly string[]).includes(value)) return value as VerdictMode;
  throw new UsageError(`--verdicts must be one of ${VERDICT_MODES.join(', ')}, got "${value}"`, { hint: 'pass --verdicts default or --verdicts isolated' });
}
