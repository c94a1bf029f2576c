import type { HumanEvalProblem } from '../datasets/humaneval.js';

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
