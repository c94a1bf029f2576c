/**
 * The JavaScript that runs inside each candidate's isolate before the candidate: our own `assert` module (Node's
 * `assert` semantics for what MultiPL-E's tests use: ok, equal, notEqual, strictEqual, notStrictEqual, deepEqual,
 * deepStrictEqual, notDeepEqual, notDeepStrictEqual, throws, doesNotThrow, fail, `assert.strict`, AssertionError
 * with code ERR_ASSERTION), a `require` that knows only `assert`/`node:assert` (the tests' one import), and a
 * `console` whose output goes to the host through the writer each run is given. It keeps no state of the host, so it
 * is baked into the isolates' startup snapshot once per process and every new context starts with it installed. Written for this repository, not copied from
 * Node. It is a string because it is evaluated in the isolate, never in the host.
 */
export const ISOLATE_RUNTIME = String.raw`
(function () {
  'use strict';
  let write = () => {};

  const show = (value, depth) => {
    if (typeof value === 'string') return depth === 0 ? value : JSON.stringify(value);
    if (typeof value === 'bigint') return value + 'n';
    if (typeof value === 'function') return '[Function: ' + (value.name || '(anonymous)') + ']';
    if (typeof value === 'symbol' || value === null || value === undefined || typeof value !== 'object') return String(value);
    if (depth > 2) return Array.isArray(value) ? '[Array]' : '[Object]';
    if (Array.isArray(value)) return '[ ' + value.map((item) => show(item, depth + 1)).join(', ') + ' ]';
    if (value instanceof Error) return value.stack || String(value);
    if (value instanceof Map) return 'Map(' + value.size + ') { ' + [...value].map(([k, v]) => show(k, depth + 1) + ' => ' + show(v, depth + 1)).join(', ') + ' }';
    if (value instanceof Set) return 'Set(' + value.size + ') { ' + [...value].map((v) => show(v, depth + 1)).join(', ') + ' }';
    const keys = Object.keys(value);
    return keys.length === 0 ? '{}' : '{ ' + keys.map((k) => k + ': ' + show(value[k], depth + 1)).join(', ') + ' }';
  };
  const line = (args) => args.map((arg) => show(arg, 0)).join(' ') + '\n';
  const out = (...args) => { write(1, line(args)); };
  const err = (...args) => { write(2, line(args)); };
  globalThis.console = Object.freeze({ log: out, info: out, debug: out, error: err, warn: err, trace: err });

  class AssertionError extends Error {
    constructor(options) {
      super(options.message);
      this.name = 'AssertionError';
      this.code = 'ERR_ASSERTION';
      this.actual = options.actual;
      this.expected = options.expected;
      this.operator = options.operator;
      this.generatedMessage = options.generated;
    }
  }
  const failWith = (message, actual, expected, operator, fallback) => {
    if (message instanceof Error) throw message;
    const generated = message === undefined;
    throw new AssertionError({ message: generated ? fallback() : String(message), actual, expected, operator, generated });
  };
  const describe = (value) => { try { return show(value, 1); } catch { return String(value); } };

  const isObject = (value) => value !== null && (typeof value === 'object' || typeof value === 'function');
  const tag = (value) => Object.prototype.toString.call(value);
  const ownEnumerable = (value) => Object.keys(value);
  const ownEnumerableSymbols = (value) => Object.getOwnPropertySymbols(value).filter((s) => Object.prototype.propertyIsEnumerable.call(value, s));

  // deep equality: strict compares primitives with Object.is, prototypes and type tags; loose (legacy
  // deepEqual) compares primitives with == (NaN equal to NaN) and ignores prototypes
  const deep = (a, b, strict, seen) => {
    if (strict ? Object.is(a, b) : a === b) return true;
    if (!isObject(a) || !isObject(b)) {
      if (strict) return false;
      if (isObject(a) || isObject(b)) return false;
      return a == b || (Number.isNaN(a) && Number.isNaN(b));
    }
    if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (tag(a) !== tag(b)) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    if (a instanceof Date && b instanceof Date) { if (a.getTime() !== b.getTime()) return false; }
    else if (a instanceof RegExp && b instanceof RegExp) { if (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false; }
    else if (a instanceof Error && b instanceof Error) { if (a.message !== b.message || a.name !== b.name) return false; }
    else if (typeof a === 'function' || typeof b === 'function') return false;
    if (a instanceof Number || a instanceof String || a instanceof Boolean) {
      if (!Object.is(a.valueOf(), b.valueOf())) return false;
    }
    if (ArrayBuffer.isView(a)) {
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (!deep(a[i], b[i], strict, seen)) return false;
    }
    const pair = seen.get(a);
    if (pair !== undefined && pair.has(b)) return true;
    if (pair === undefined) seen.set(a, new Set([b])); else pair.add(b);

    if (Array.isArray(a) && a.length !== b.length) return false;
    const keysA = ownEnumerable(a);
    const keysB = ownEnumerable(b);
    if (keysA.length !== keysB.length) return false;
    for (const key of keysA) if (!Object.prototype.propertyIsEnumerable.call(b, key)) return false;
    if (strict) {
      const symA = ownEnumerableSymbols(a);
      const symB = ownEnumerableSymbols(b);
      if (symA.length !== symB.length) return false;
      for (const s of symA) if (!Object.prototype.propertyIsEnumerable.call(b, s) || !deep(a[s], b[s], strict, seen)) return false;
    }
    if (a instanceof Set && b instanceof Set) {
      if (a.size !== b.size) return false;
      outer: for (const item of a) {
        if (b.has(item)) continue;
        if (!isObject(item) && strict) return false;
        for (const other of b) if (deep(item, other, strict, seen)) continue outer;
        return false;
      }
    } else if (a instanceof Map && b instanceof Map) {
      if (a.size !== b.size) return false;
      outer: for (const [key, value] of a) {
        if (b.has(key)) { if (!deep(value, b.get(key), strict, seen)) return false; continue; }
        for (const [otherKey, otherValue] of b) if (deep(key, otherKey, strict, seen) && deep(value, otherValue, strict, seen)) continue outer;
        return false;
      }
    }
    for (const key of keysA) if (!deep(a[key], b[key], strict, seen)) return false;
    return true;
  };
  const isDeepEqual = (a, b) => deep(a, b, false, new Map());
  const isDeepStrictEqual = (a, b) => deep(a, b, true, new Map());

  const ok = (value, message) => {
    if (!value) failWith(message, value, true, '==', () => 'The expression evaluated to a falsy value:\n\n  assert.ok(' + describe(value) + ')\n');
  };
  const assert = function assert(value, message) {
    if (arguments.length === 0) failWith('No value argument passed to assert.ok()', undefined, true, '==', () => '');
    ok(value, message);
  };
  assert.ok = function (value, message) {
    if (arguments.length === 0) failWith('No value argument passed to assert.ok()', undefined, true, '==', () => '');
    ok(value, message);
  };
  assert.AssertionError = AssertionError;
  assert.fail = (message) => failWith(message === undefined ? 'Failed' : message, undefined, undefined, 'fail', () => 'Failed');
  assert.equal = (a, b, message) => {
    if (!(a == b || (Number.isNaN(a) && Number.isNaN(b)))) failWith(message, a, b, '==', () => describe(a) + ' == ' + describe(b));
  };
  assert.notEqual = (a, b, message) => {
    if (a == b || (Number.isNaN(a) && Number.isNaN(b))) failWith(message, a, b, '!=', () => describe(a) + ' != ' + describe(b));
  };
  assert.strictEqual = (a, b, message) => {
    if (!Object.is(a, b)) failWith(message, a, b, 'strictEqual', () => 'Expected values to be strictly equal:\n\n' + describe(a) + ' !== ' + describe(b) + '\n');
  };
  assert.notStrictEqual = (a, b, message) => {
    if (Object.is(a, b)) failWith(message, a, b, 'notStrictEqual', () => 'Expected "actual" to be strictly unequal to: ' + describe(b));
  };
  assert.deepEqual = (a, b, message) => {
    if (!isDeepEqual(a, b)) failWith(message, a, b, 'deepEqual', () => 'Expected values to be loosely deep-equal:\n\n' + describe(a) + '\n\nshould loosely deep-equal\n\n' + describe(b));
  };
  assert.notDeepEqual = (a, b, message) => {
    if (isDeepEqual(a, b)) failWith(message, a, b, 'notDeepEqual', () => 'Expected "actual" not to be loosely deep-equal to: ' + describe(b));
  };
  assert.deepStrictEqual = (a, b, message) => {
    if (!isDeepStrictEqual(a, b)) failWith(message, a, b, 'deepStrictEqual', () => 'Expected values to be strictly deep-equal:\n' + describe(a) + ' !== ' + describe(b));
  };
  assert.notDeepStrictEqual = (a, b, message) => {
    if (isDeepStrictEqual(a, b)) failWith(message, a, b, 'notDeepStrictEqual', () => 'Expected "actual" not to be strictly deep-equal to: ' + describe(b));
  };
  const matches = (error, expected) => {
    if (expected === undefined) return true;
    if (expected instanceof RegExp) return expected.test(String(error));
    if (typeof expected === 'function') {
      if (expected.prototype !== undefined && error instanceof expected) return true;
      if (Error.isPrototypeOf(expected) || expected === Error) return false;
      return expected.call({}, error) === true;
    }
    if (isObject(expected)) {
      for (const key of Object.keys(expected)) {
        const want = expected[key];
        const got = error == null ? undefined : error[key];
        if (want instanceof RegExp && typeof got === 'string') { if (!want.test(got)) return false; }
        else if (!isDeepStrictEqual(got, want)) return false;
      }
      return true;
    }
    return true;
  };
  assert.throws = (fn, expected, message) => {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    if (typeof expected === 'string') { message = expected; expected = undefined; }
    try { fn(); } catch (error) {
      if (!matches(error, expected)) failWith(message, error, expected, 'throws', () => 'The error did not match the expected value');
      return;
    }
    failWith(message, undefined, expected, 'throws', () => 'Missing expected exception.');
  };
  assert.doesNotThrow = (fn, expected, message) => {
    if (typeof expected === 'string') { message = expected; expected = undefined; }
    try { fn(); } catch (error) {
      failWith(message, error, expected, 'doesNotThrow', () => 'Got unwanted exception.\nActual message: "' + (error && error.message) + '"');
    }
  };
  assert.strict = assert;
  Object.freeze(assert);

  const modules = { assert, 'node:assert': assert, 'assert/strict': assert, 'node:assert/strict': assert };
  const require = function require(name) {
    if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    const error = new Error("Cannot find module '" + name + "' (only assert is available in the sandbox)");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  };

  // One candidate, as Node runs a CommonJS file: its source in the module wrapper, then uncaught errors reported.
  // writer(fd, text): the host's callback for this candidate's console output.
  globalThis.$evalpipeRun = function (source, writer) {
    write = writer;
    // Work V8 schedules outside the candidate's own run is removed, in each context (V8 installs these per context,
    // after the snapshot): a FinalizationRegistry's cleanup callbacks would run after its verdict (in a reused
    // isolate, inside a later candidate's run, stalling it and the host), and an Atomics.waitAsync timeout task
    // aborts isolated-vm 5's host process ("terminate called without an active exception"). Both are in Node.
    delete globalThis.FinalizationRegistry;
    if (typeof Atomics !== 'undefined') delete Atomics.waitAsync;
    const module = { exports: {} };
    let verdict;
    try {
      const wrapped = (0, eval)('(function (exports, require, module, __filename, __dirname) {' + source + '\n})');
      wrapped.call(module.exports, module.exports, require, module, '/candidate.js', '/');
      verdict = { ok: true };
    } catch (error) {
      let type = typeof error;
      let message = String(error);
      try {
        if (isObject(error)) {
          type = (error.constructor && error.constructor.name) || error.name || 'Error';
          message = String(error.message);
        }
      } catch { /* a hostile error object: keep typeof */ }
      verdict = { ok: false, type, message };
    }
    return JSON.stringify(verdict);
  };
})();
`;
