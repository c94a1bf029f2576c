import { join } from 'node:path';
import { REPO_ROOT } from './spawn-cli.js';

/** The MultiPL-E fixtures (3 JavaScript and 2 TypeScript problems in the real MultiPL-E jsonl format). */
export const MULTIPL_E_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'multipl-e');

/** The `run` flags that evaluate both MultiPL-E tasks from the local fixtures, 16 new tokens per sample. */
export function multiplEFixtureArgs(): string[] {
  return [
    '--tasks',
    'multipl-e-js,multipl-e-ts',
    '--multipl-e-js',
    join(MULTIPL_E_FIXTURES, 'humaneval-js.jsonl'),
    '--multipl-e-ts',
    join(MULTIPL_E_FIXTURES, 'humaneval-ts.jsonl'),
    '--max-new-tokens',
    '16',
  ];
}
