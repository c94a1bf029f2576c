/**
 * The programs evalplus-style tasks (humaneval-plus, mbpp-plus) run in the sandbox. One program per candidate and
 * test suite (base, plus), as evalplus runs `untrusted_check` once for the base inputs and once for the plus ones:
 * prompt + completion, then a harness that wraps the entry point so that each outermost call (one test input) runs
 * under its own time limit (SIGALRM via setitimer, as evalplus's `time_limit`), then the suite's tests.
 * The canonical solution runs through the same program in `calibrate` mode: no limits, each call timed, the times
 * printed on the last line for the per-test limits (evalplus's `get_groundtruth` + `trusted_exec(record_time=True)`).
 */

/** One suite of tests: Python source that calls the entry point by its global name, or `check(candidate)`. */
export interface TestSuite {
  /** The test source (a HumanEval-style `check` definition, MBPP asserts, or evalplus's inputs/results loop). */
  source: string;
  /** Set for HumanEval-style suites: the call that runs them (`check(entry_point)`). */
  call?: string;
}

/** One problem of an evalplus-style task. */
export interface PlusProblem {
  task_id: string;
  /** What the model continues (evalplus's prompt). */
  prompt: string;
  entry_point: string;
  /** The canonical solution as a completion of `prompt` (HumanEval+) or the whole reference code (MBPP+). */
  canonical_solution: string;
  base: TestSuite;
  plus: TestSuite;
}

/** The marker of the calibration run's last stdout line. */
export const TIMES_MARKER = '__EVALPLUS_TIMES__=';

/** Error type a per-test time limit raises (evalplus counts it as a failure, not a process timeout). */
export const PER_TEST_TIMEOUT = 'PerTestTimeLimit';

/**
 * A stand-in for the few numpy functions evalplus's generated tests use (`np.allclose`, `np.isclose`,
 * `np.testing.assert_allclose`, `np.ndarray`/`np.float64` in `is_floats`): the sandbox image has no numpy. Installed
 * only when `import numpy` fails, after the candidate's code ran (so a candidate's own `import numpy` still fails).
 */
const NUMPY_SHIM = `
try:
    import numpy as _ep_np
except ImportError:
    import math as _ep_math
    import sys as _ep_sys
    import types as _ep_types
    _ep_np = _ep_types.ModuleType("numpy")

    class _EpArray(list):
        pass

    def _ep_flat(value):
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                out.extend(_ep_flat(item))
            return out
        return [value]

    def _ep_isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        if a == b:
            return True
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            return False
        if _ep_math.isnan(a) or _ep_math.isnan(b):
            return equal_nan and _ep_math.isnan(a) and _ep_math.isnan(b)
        return abs(a - b) <= atol + rtol * abs(b)

    def _ep_allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        fa, fb = _ep_flat(a), _ep_flat(b)
        if len(fa) != len(fb):
            if len(fb) == 1:
                fb = fb * len(fa)
            elif len(fa) == 1:
                fa = fa * len(fb)
            else:
                raise ValueError("operands could not be broadcast together")
        return all(_ep_isclose(x, y, rtol, atol, equal_nan) for x, y in zip(fa, fb))

    def _ep_assert_allclose(actual, desired, rtol=1e-07, atol=0, equal_nan=True, err_msg="", verbose=True):
        if not _ep_allclose(actual, desired, rtol, atol, equal_nan):
            raise AssertionError("Not equal to tolerance rtol=%g, atol=%g" % (rtol, atol))

    _ep_np.ndarray = _EpArray
    _ep_np.float64 = float
    _ep_np.float32 = float
    _ep_np.isclose = _ep_isclose
    _ep_np.allclose = _ep_allclose
    _ep_np.testing = _ep_types.SimpleNamespace(assert_allclose=_ep_assert_allclose)
    _ep_sys.modules["numpy"] = _ep_np
`;

function harness(entryPoint: string, limits: readonly number[] | null): string {
  const list = limits === null ? 'None' : `[${limits.map((limit) => limit.toPrecision(6)).join(', ')}]`;
  return `
import signal as _ep_signal
import time as _ep_time

_EP_LIMITS = ${list}
_ep_times = []


class ${PER_TEST_TIMEOUT}(BaseException):
    pass


def _ep_alarm(signum, frame):
    raise ${PER_TEST_TIMEOUT}("a test ran past its time limit")


_ep_signal.signal(_ep_signal.SIGALRM, _ep_alarm)


def _ep_timed(fn):
    depth = [0]

    def _ep_call(*args, **kwargs):
        if depth[0] > 0:
            return fn(*args, **kwargs)
        index = len(_ep_times)
        limit = None
        if _EP_LIMITS:
            limit = _EP_LIMITS[index] if index < len(_EP_LIMITS) else max(_EP_LIMITS)
        depth[0] += 1
        start = _ep_time.perf_counter()
        if limit:
            _ep_signal.setitimer(_ep_signal.ITIMER_REAL, limit)
        try:
            return fn(*args, **kwargs)
        finally:
            if limit:
                _ep_signal.setitimer(_ep_signal.ITIMER_REAL, 0)
            _ep_times.append(_ep_time.perf_counter() - start)
            depth[0] -= 1

    return _ep_call


${entryPoint} = _ep_timed(${entryPoint})
`;
}

/**
 * The program for one candidate (or, with `limits` null, the canonical solution's timing run) and one suite:
 * `prompt + completion`, the harness, the numpy stand-in, the tests, and in calibration the times line.
 */
export function plusProgram(
  problem: PlusProblem,
  completion: string,
  suite: 'base' | 'plus',
  limits: readonly number[] | null,
  prompt = problem.prompt,
): string {
  const tests = problem[suite];
  const timesLine = limits === null ? `\nimport json as _ep_json\nprint("${TIMES_MARKER}" + _ep_json.dumps(_ep_times))\n` : '';
  return `${prompt}${completion}\n${harness(problem.entry_point, limits)}${NUMPY_SHIM}\n${tests.source}\n${tests.call ?? ''}\n${timesLine}`;
}

/** The per-call times a calibration run printed (its last marker line), or null when there is none. */
export function parseTimes(stdout: string): number[] | null {
  const line = stdout
    .split('\n')
    .reverse()
    .find((each) => each.startsWith(TIMES_MARKER));
  if (!line) return null;
  try {
    const value = JSON.parse(line.slice(TIMES_MARKER.length)) as unknown;
    return Array.isArray(value) && value.every((each) => typeof each === 'number') ? (value as number[]) : null;
  } catch {
    return null;
  }
}

/** evalplus's per-test limits: max(min_time_limit, gt_time_limit_factor × the canonical solution's time). */
export function timeLimits(times: readonly number[], minTimeLimit: number, factor: number): number[] {
  return times.map((time) => Math.max(minTimeLimit, factor * time));
}

/** The most evalplus gives one untrusted_check: EVALPLUS_TIMEOUT_PER_TASK (60 s by default). */
export const TIMEOUT_PER_TASK_S = 60;

/** evalplus's whole-process timeout for one suite: min(60 s, sum of the per-test limits) + 1 s, in ms. */
export function suiteTimeoutMs(limits: readonly number[], minTimeLimit: number): number {
  const sum = limits.length > 0 ? limits.reduce((a, b) => a + b, 0) : minTimeLimit;
  return Math.round((Math.min(TIMEOUT_PER_TASK_S, sum) + 1) * 1000);
}
