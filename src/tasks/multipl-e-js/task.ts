import { defineTask } from '../task.js';
import { multiplEConfigFrom, multiplEOptions } from '../multipl-e/config.js';
import { multiplEParts } from '../multipl-e/task.js';

const parts = multiplEParts({ language: 'js', config: (from) => from.config['multipl-e-js'] });

/** MultiPL-E HumanEval in JavaScript: completions run against the translated tests in a fresh isolated-vm context each. */
export const multiplEJsTask = defineTask({
  name: 'multipl-e-js',
  version: 1,
  description: 'MultiPL-E humaneval-js pass@k: n JavaScript completions per problem, each run against its tests in a fresh isolated-vm context',
  options: multiplEOptions('js'),
  configFrom: (flags) => multiplEConfigFrom('js', flags),
  stages: parts.stages,
  score: parts.score,
  headline: (section) => ({ ...section.estimates }),
});
