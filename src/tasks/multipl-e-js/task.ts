import { defineTask } from '../task.js';
import { multiplEConfigFrom, multiplEOptions } from '../multipl-e/config.js';
import { multiplEParts } from '../multipl-e/task.js';

const parts = multiplEParts({ language: 'js', config: (from) => from.config['multipl-e-js'] });

/** MultiPL-E HumanEval in JavaScript: completions run against the translated tests in an isolated-vm isolate each. */
export const multiplEJsTask = defineTask({
  name: 'multipl-e-js',
  version: 1,
  description: 'MultiPL-E humaneval-js pass@k: n JavaScript completions per problem, each run against its tests in its own isolated-vm isolate',
  options: multiplEOptions('js'),
  configFrom: (flags) => multiplEConfigFrom('js', flags),
  stages: parts.stages,
  score: parts.score,
  headline: (section) => ({ ...section.estimates }),
});
