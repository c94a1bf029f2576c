import { describe, expect, it } from 'vitest';
import type { ExecutionRecord } from './records.js';
import { FAILURE_MESSAGE_CHARS, failureTypes, firstLine, humanEvalResults } from './results.js';

function record(taskId: string, sampleIndex: number, status: ExecutionRecord['status'], exceptionType: string | null, message: string | null): ExecutionRecord {
  return {
    key: `exec:${taskId}:${sampleIndex}`,
    task_id: taskId,
    sample_index: sampleIndex,
    status,
    passed: status === 'passed',
    exception_type: exceptionType,
    message,
    duration_ms: 1,
    stdout: '',
    stderr: '',
    attempts: 1,
  };
}

const TASKS = ['HumanEval/0', 'HumanEval/1', 'HumanEval/2', 'HumanEval/10'];

const RECORDS: ExecutionRecord[] = [
  record('HumanEval/10', 0, 'failed', 'SyntaxError', 'invalid syntax (<string>, line 12)'),
  record('HumanEval/2', 1, 'failed', 'SyntaxError', '\n  unexpected indent (<string>, line 3)\n  more detail'),
  record('HumanEval/2', 0, 'failed', 'SyntaxError', 'expected an indented block (<string>, line 9)'),
  record('HumanEval/1', 0, 'timeout', null, 'timed out after 3 s'),
  record('HumanEval/0', 0, 'passed', null, null),
  record('HumanEval/0', 1, 'failed', 'AssertionError', null),
  record('HumanEval/1', 1, 'oom', null, 'MemoryError'),
  record('HumanEval/10', 1, 'failed', 'NameError', "name 'foo' is not defined"),
];

describe('humaneval failure types', () => {
  it('counts each failure kind (status and exception type) with its first example, count descending then kind', () => {
    expect(failureTypes(TASKS, RECORDS)).toEqual([
      { kind: 'failed: SyntaxError', count: 3, example: { task_id: 'HumanEval/2', sample_index: 0, message: 'expected an indented block (<string>, line 9)' } },
      { kind: 'failed: AssertionError', count: 1, example: { task_id: 'HumanEval/0', sample_index: 1, message: null } },
      { kind: 'failed: NameError', count: 1, example: { task_id: 'HumanEval/10', sample_index: 1, message: "name 'foo' is not defined" } },
      { kind: 'oom', count: 1, example: { task_id: 'HumanEval/1', sample_index: 1, message: 'MemoryError' } },
      { kind: 'timeout', count: 1, example: { task_id: 'HumanEval/1', sample_index: 0, message: 'timed out after 3 s' } },
    ]);
  });

  it('is the same whatever the order of the records', () => {
    const expected = failureTypes(TASKS, RECORDS);
    expect(failureTypes(TASKS, [...RECORDS].reverse())).toEqual(expected);
    expect(failureTypes(TASKS, [...RECORDS.slice(3), ...RECORDS.slice(0, 3)])).toEqual(expected);
  });

  it('keeps the top kinds only, and none when everything passed', () => {
    expect(failureTypes(TASKS, RECORDS, 2).map((type) => type.kind)).toEqual(['failed: SyntaxError', 'failed: AssertionError']);
    expect(failureTypes(TASKS, [record('HumanEval/0', 0, 'passed', null, null)])).toEqual([]);
  });

  it("keeps a message's first non-empty line, capped", () => {
    expect(firstLine('\n\n  Traceback: x\nline 2')).toBe('Traceback: x');
    expect(firstLine(null)).toBeNull();
    expect(firstLine('  \n ')).toBeNull();
    const long = firstLine('x'.repeat(500))!;
    expect([...long]).toHaveLength(FAILURE_MESSAGE_CHARS);
    expect(long.endsWith('…')).toBe(true);
  });

  it('is in the humaneval section of results.json, beside the unchanged fields', () => {
    const section = humanEvalResults(TASKS, 2, RECORDS);
    expect(section.status_counts).toEqual({ failed: 5, timeout: 1, passed: 1, oom: 1 });
    expect(section.failure_types?.[0]).toMatchObject({ kind: 'failed: SyntaxError', count: 3 });
    expect(section.failure_types?.reduce((sum, type) => sum + type.count, 0)).toBe(7);
  });
});
