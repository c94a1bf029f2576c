import { defineTask } from '../task.js';
import { HUMANEVAL_STOP_SEQUENCES } from '../humaneval/config.js';
import { PLUS_TIME_OPTIONS } from '../evalplus/config.js';
import { plusTaskParts } from '../evalplus/task-factory.js';
import { loadHumanEvalPlus } from './dataset.js';

export const humanevalPlusParts = plusTaskParts({
  name: 'humaneval-plus',
  description:
    "HumanEval+ (evalplus): pass@k on HumanEval's base tests and on base + evalplus's added tests, per-test limits from the canonical solution's time",
  options: {
    'humaneval-plus': { type: 'string', describe: 'HumanEval+ .jsonl/.parquet in evalplus/humanevalplus format [default: hub evalplus/humanevalplus]' },
    ...PLUS_TIME_OPTIONS,
  },
  sourceFlag: 'humaneval-plus',
  baseSourceFlag: 'humaneval',
  defaultStop: HUMANEVAL_STOP_SEQUENCES,
  load: (config, options) => loadHumanEvalPlus(config, options),
});

/** HumanEval+: humaneval's prompts and stop list, evalplus's tests and verdicts. */
export const humanevalPlusTask = defineTask({
  name: humanevalPlusParts.name,
  version: humanevalPlusParts.version,
  description: humanevalPlusParts.description,
  options: humanevalPlusParts.options,
  configFrom: humanevalPlusParts.configFrom,
  stages: humanevalPlusParts.stages,
  score: humanevalPlusParts.score,
  headline: humanevalPlusParts.headline,
});
