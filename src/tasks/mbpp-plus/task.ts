import { defineTask } from '../task.js';
import { plusTaskParts } from '../evalplus/task-factory.js';
import { loadMbppPlus } from './dataset.js';

/** The bigcode-evaluation-harness MBPP stop list (a completion writes the whole function, so `\ndef` is kept). */
export const MBPP_PLUS_STOP_SEQUENCES = ['\nclass', '\nassert', '\n"""', '\nprint', '\nif', '\n```', '<file_sep>'];

export const mbppPlusParts = plusTaskParts({
  name: 'mbpp-plus',
  description: "MBPP+ (evalplus): pass@k on MBPP's original asserts and on base + evalplus's added tests, per-test limits from the reference code's time",
  options: {
    'mbpp-plus': { type: 'string', describe: 'MBPP+ .jsonl/.parquet in evalplus/mbppplus format [default: hub evalplus/mbppplus]' },
  },
  sourceFlag: 'mbpp-plus',
  defaultStop: MBPP_PLUS_STOP_SEQUENCES,
  load: (config, options) => loadMbppPlus(config, options),
});

/** MBPP+: evalplus's prompt form (the text and its first assert in a docstring), evalplus's tests and verdicts. */
export const mbppPlusTask = defineTask({
  name: mbppPlusParts.name,
  version: mbppPlusParts.version,
  description: mbppPlusParts.description,
  options: mbppPlusParts.options,
  configFrom: mbppPlusParts.configFrom,
  stages: mbppPlusParts.stages,
  score: mbppPlusParts.score,
  headline: mbppPlusParts.headline,
});
