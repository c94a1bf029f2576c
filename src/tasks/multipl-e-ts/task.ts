import { defineTask } from '../task.js';
import { multiplEConfigFrom, multiplEOptions } from '../multipl-e/config.js';
import { multiplEParts } from '../multipl-e/task.js';

const parts = multiplEParts({ language: 'ts', config: (from) => from.config['multipl-e-ts'] });

/** MultiPL-E HumanEval in TypeScript: completions run against the translated tests (tsc checks first), in a fresh isolated-vm context each. */
export const multiplETsTask = defineTask({
  name: 'multipl-e-ts',
  version: 1,
  description: 'MultiPL-E humaneval-ts pass@k: n TypeScript completions per problem, each run against its tests in a fresh isolated-vm context',
  options: multiplEOptions('ts'),
  configFrom: (flags) => multiplEConfigFrom('ts', flags),
  stages: parts.stages,
  score: parts.score,
  headline: (section) => ({ ...section.estimates }),
});
