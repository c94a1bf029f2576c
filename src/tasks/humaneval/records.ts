import type { GeneratedSample } from '../../backends/engine/protocol.js';
import { recordKind } from '../../pipeline/store/record-kind.js';

/** One generated sample (records/generate.jsonl). */
export interface GenerationRecord {
  key: string;
  task_id: string;
  sample_index: number;
  /** The exact prompt the model continued (after optional stripping): the program is prompt_used + completion. */
  prompt_used: string;
  completion: string;
  finish_reason: GeneratedFinish;
  n_new_tokens: number;
  stop_sequence: string | null;
  /** With finish_reason `engine_error`: the engine's message for the request that failed. */
  error?: string;
}
/** The engine's finish reasons, and `engine_error`: the engine refused this problem's request even alone. */
type GeneratedFinish = GeneratedSample['finish_reason'] | 'engine_error';

export const GENERATION_RECORDS = recordKind<GenerationRecord>('generate', {
  task_id: 'string',
  sample_index: 'integer',
  prompt_used: 'string',
  completion: 'string',
});

export function generationKey(taskId: string, sampleIndex: number): string {
  return `gen:${taskId}:${sampleIndex}`;
}

/** One sample's verdict in the sandbox (records/execute.jsonl). */
export interface ExecutionRecord {
  key: string;
  task_id: string;
  sample_index: number;
  /** `prompt_too_long`: the prompt filled the model's context; `engine_error`: the engine could not generate the
   * sample. Either way nothing was run and the sample counts as a failure. */
  status: 'passed' | 'failed' | 'timeout' | 'oom' | 'prompt_too_long' | 'engine_error';
  passed: boolean;
  exception_type: string | null;
  message: string | null;
  duration_ms: number;
  stdout: string;
  stderr: string;
  attempts: number;
  /** Only with --verdicts isolated: `status` above is the isolated verdict (`checked`), or the default one when
   * the problem cannot run isolated (`unsupported`, with the reason). */
  isolation?: 'checked' | 'unsupported';
  isolation_reason?: string | null;
  /** The default mode's verdict of the same sample. */
  default_status?: ExecutionRecord['status'];
  default_exception_type?: string | null;
  /** Passed the default way, failed isolated: listed in the report as suspect. */
  suspect?: boolean;
}

export const EXECUTION_RECORDS = recordKind<ExecutionRecord>('execute', {
  task_id: 'string',
  sample_index: 'integer',
  status: 'string',
  passed: 'boolean',
});

export function executionKey(taskId: string, sampleIndex: number): string {
  return `exec:${taskId}:${sampleIndex}`;
}
