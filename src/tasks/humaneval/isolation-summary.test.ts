import { describe, expect, it } from 'vitest';
import { summariseIsolation } from './isolation-summary.js';

describe('summariseIsolation', () => {
  it('is undefined for default-mode records', () => {
    expect(summariseIsolation([{ task_id: 'HumanEval/0', sample_index: 0, status: 'passed' }])).toBeUndefined();
  });

  it('lists suspects by task (numeric order) and sample, and the problems that could not run isolated', () => {
    const records = [
      {
        task_id: 'HumanEval/10',
        sample_index: 1,
        status: 'failed',
        exception_type: 'NotPlainData',
        isolation: 'checked',
        default_status: 'passed',
        suspect: true,
      },
      {
        task_id: 'HumanEval/2',
        sample_index: 3,
        status: 'failed',
        exception_type: 'AssertionError',
        isolation: 'checked',
        default_status: 'passed',
        suspect: true,
      },
      {
        task_id: 'HumanEval/2',
        sample_index: 0,
        status: 'failed',
        exception_type: 'AssertionError',
        isolation: 'checked',
        default_status: 'failed',
        suspect: false,
      },
      { task_id: 'HumanEval/9', sample_index: 0, status: 'passed', exception_type: null, isolation: 'unsupported', default_status: 'passed', suspect: false },
    ];
    expect(summariseIsolation(records)).toEqual({
      verdicts: 'isolated',
      suspect_count: 2,
      suspects: [
        { task_id: 'HumanEval/2', sample_index: 3, default_status: 'passed', status: 'failed', exception_type: 'AssertionError' },
        { task_id: 'HumanEval/10', sample_index: 1, default_status: 'passed', status: 'failed', exception_type: 'NotPlainData' },
      ],
      unsupported_problems: ['HumanEval/9'],
    });
  });
});
