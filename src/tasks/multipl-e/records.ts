import { recordKind } from '../../pipeline/store/record-kind.js';
import type { ExecutionRecord, GenerationRecord } from '../humaneval/records.js';
import type { MultiplELanguage } from './config.js';

/** The stage names (and record files) of one language's task: multipl-e-js-generate, multipl-e-js-execute. */
export function multiplEStageNames(language: MultiplELanguage): { generate: string; execute: string } {
  return { generate: `multipl-e-${language}-generate`, execute: `multipl-e-${language}-execute` };
}

/** Generation records: HumanEval's shape (task_id is the problem's `name`), in the task's own file. */
export function multiplEGenerationRecords(language: MultiplELanguage) {
  return recordKind<GenerationRecord>(multiplEStageNames(language).generate, {
    task_id: 'string',
    sample_index: 'integer',
    prompt_used: 'string',
    completion: 'string',
  });
}

/** Execution records: HumanEval's shape, the verdict from the isolate. */
export function multiplEExecutionRecords(language: MultiplELanguage) {
  return recordKind<ExecutionRecord>(multiplEStageNames(language).execute, {
    task_id: 'string',
    sample_index: 'integer',
    status: 'string',
    passed: 'boolean',
  });
}
