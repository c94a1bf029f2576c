import { describe, expect, it } from 'vitest';
import { runJavaScript, type JsLimits } from './js-executor.js';
import { runTypeScript } from './ts-executor.js';

// Generous limits: CI has 2 busy cores, so nothing here depends on how fast a candidate runs, only on its outcome.
const LIMITS: JsLimits = { timeoutMs: 3000, memoryMb: 128, maxOutputBytes: 4096 };
const ASSERT = "const assert = require('node:assert');\n";

describe('runJavaScript: the assert module inside the isolate', () => {
  it.each([
    ['deepEqual loose', 'assert.deepEqual([1, "2", {a: 3}], [1, 2, {a: "3"}]);', 'passed'],
    ['deepEqual arrays differ', 'assert.deepEqual([1, 2], [1, 3]);', 'failed'],
    ['deepEqual length', 'assert.deepEqual([1, 2], [1, 2, undefined]);', 'failed'],
    ['deepEqual NaN', 'assert.deepEqual(NaN, NaN);', 'passed'],
    ['deepEqual null/undefined', 'assert.deepEqual(null, undefined);', 'passed'],
    ['deepEqual object vs primitive', 'assert.deepEqual({}, 0);', 'failed'],
    ['deepEqual array vs object', 'assert.deepEqual([], {});', 'failed'],
    ['deepStrictEqual types', 'assert.deepStrictEqual([1], ["1"]);', 'failed'],
    ['deepStrictEqual equal', 'assert.deepStrictEqual({a: [1, {b: 2}]}, {a: [1, {b: 2}]});', 'passed'],
    ['deepStrictEqual -0', 'assert.deepStrictEqual(-0, 0);', 'failed'],
    ['deepStrictEqual prototypes', 'assert.deepStrictEqual(Object.create(null), {});', 'failed'],
    ['deepEqual maps', 'assert.deepEqual(new Map([[1, [2]]]), new Map([[1, [2]]]));', 'passed'],
    ['deepEqual sets', 'assert.deepStrictEqual(new Set([1, 2]), new Set([2, 3]));', 'failed'],
    ['equal loose', 'assert.equal(1, "1");', 'passed'],
    ['strictEqual', 'assert.strictEqual(1, "1");', 'failed'],
    ['notStrictEqual', 'assert.notStrictEqual(1, 2);', 'passed'],
    ['ok falsy', 'assert.ok(0);', 'failed'],
    ['assert() truthy', 'assert(1);', 'passed'],
    ['throws', 'assert.throws(() => { throw new TypeError("x"); }, TypeError);', 'passed'],
    ['throws nothing', 'assert.throws(() => 1);', 'failed'],
    ['throws wrong class', 'assert.throws(() => { throw new TypeError("x"); }, RangeError);', 'failed'],
    ['throws regexp', 'assert.throws(() => { throw new Error("bad thing"); }, /bad/);', 'passed'],
  ])('%s', async (_, code, status) => {
    const result = await runJavaScript(ASSERT + code, LIMITS);
    expect(result.status).toBe(status);
    if (status === 'failed') expect(result.exceptionType).toBe('AssertionError');
  });

  it('reports the uncaught error type and message, and captures console output', async () => {
    const result = await runJavaScript('console.log("hi", [1, 2], {a: 1}); console.error("oops"); null.x;', LIMITS);
    expect(result).toMatchObject({ status: 'failed', exceptionType: 'TypeError', stdout: 'hi [ 1, 2 ] { a: 1 }\n', stderr: 'oops\n' });
    expect(result.message).toMatch(/null/);
    expect((await runJavaScript('throw "a string";', LIMITS)).exceptionType).toBe('string');
    expect((await runJavaScript('function (', LIMITS)).exceptionType).toBe('SyntaxError');
  });

  it('keeps only maxOutputBytes of output, counting all of it', async () => {
    const result = await runJavaScript('for (let i = 0; i < 1000; i++) console.log("0123456789");', LIMITS);
    expect(result.status).toBe('passed');
    expect(result.stdout.length).toBe(4096);
    expect(result.stdoutBytes).toBe(11_000);
  });
});

describe('runJavaScript: escapes and resource bombs are contained and classified, and the next candidate runs', () => {
  it.each([
    ['process', 'process.exit(0);'],
    ['require of anything but assert', 'require("fs").readFileSync("/etc/passwd");'],
    ['require child_process', 'require("child_process").execSync("id");'],
    ['fetch (network)', 'fetch("http://127.0.0.1/");'],
    ['timers', 'setTimeout(() => {}, 10);'],
    ['setInterval', 'setInterval(() => {}, 10);'],
    ['Buffer', 'Buffer.from("x");'],
    ['module loading by import()', 'import("fs");'],
    ['globalThis.process', 'globalThis.process.exit(0);'],
  ])('%s is not reachable', async (_, code) => {
    const result = await runJavaScript(code, LIMITS);
    expect(result.status).not.toBe('passed');
    if (result.status === 'failed') expect(result.exceptionType).toMatch(/ReferenceError|Error|TypeError/);
  });

  it('sees none of the host globals, and the constructor chain leads back into the isolate only', async () => {
    const code = `${ASSERT}
      for (const name of ['process', 'require', 'module', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'fetch', 'global', '$evalpipeWrite']) {
        assert.strictEqual(typeof globalThis[name], 'undefined', name);
      }
      const F = (() => {}).constructor;
      assert.strictEqual(typeof new F('return typeof process')(), 'string');
      assert.strictEqual(new F('return typeof process')(), 'undefined');
      assert.strictEqual(typeof this.constructor.constructor('return this')().process, 'undefined');`;
    const result = await runJavaScript(code, LIMITS);
    expect(result.message).toBeNull();
    expect(result.status).toBe('passed');
  });

  it('one candidate cannot leave state for the next (a fresh context each)', async () => {
    expect((await runJavaScript('globalThis.leak = 42; Array.prototype.includes = () => true;', LIMITS)).status).toBe('passed');
    const next = await runJavaScript(`${ASSERT}assert.strictEqual(typeof globalThis.leak, 'undefined'); assert.strictEqual([1].includes(2), false);`, LIMITS);
    expect(next.status).toBe('passed');
  });

  it('an infinite loop is a timeout', async () => {
    const result = await runJavaScript('while (true) {}', { ...LIMITS, timeoutMs: 500 });
    expect(result.status).toBe('timeout');
    expect((await runJavaScript('for (;;) { try { while (true) {} } catch {} }', { ...LIMITS, timeoutMs: 500 })).status).toBe('timeout');
  });

  it('a 4 GB allocation is an oom', async () => {
    expect((await runJavaScript('new ArrayBuffer(4 * 2 ** 30);', LIMITS)).status).toBe('oom');
    expect((await runJavaScript('new Uint8Array(4 * 2 ** 30).fill(1);', LIMITS)).status).toBe('oom');
    expect((await runJavaScript('const a = []; while (true) a.push(new Array(1e6).fill(1.5));', LIMITS)).status).toBe('oom');
    expect((await runJavaScript('let s = "x"; while (true) s = s + s;', LIMITS)).status).not.toBe('passed');
  });

  it('deep recursion fails with RangeError, and the run goes on', async () => {
    const result = await runJavaScript('function f(n) { return f(n + 1) + 1; } f(0);', LIMITS);
    expect(result).toMatchObject({ status: 'failed', exceptionType: 'RangeError' });
    expect((await runJavaScript(`${ASSERT}assert.strictEqual(1 + 1, 2);`, LIMITS)).status).toBe('passed');
  });

  it('no work outlives the candidate: FinalizationRegistry and Atomics.waitAsync are absent (an Atomics.waitAsync timeout aborted the host process)', async () => {
    const registry = await runJavaScript('new FinalizationRegistry(() => { while (true) {} }).register({}, 1);', LIMITS);
    expect(registry).toMatchObject({ status: 'failed', exceptionType: 'ReferenceError' });
    const waiting = await runJavaScript(
      'const ia = new Int32Array(new SharedArrayBuffer(16)); Atomics.waitAsync(ia, 0, 0, 50).value.then(() => { while (true) {} });',
      LIMITS,
    );
    expect(waiting).toMatchObject({ status: 'failed', exceptionType: 'TypeError' });
    expect((await runJavaScript(`${ASSERT}assert.strictEqual(typeof Atomics.load, 'function');`, LIMITS)).status).toBe('passed');
  });

  it('promise jobs run inside the candidate and nothing outlives it', async () => {
    const result = await runJavaScript('Promise.resolve().then(() => console.log("job")); console.log("sync");', LIMITS);
    expect(result.stdout).toBe('sync\njob\n');
  });
});

describe('runTypeScript: tsc --target esnext then run', () => {
  const tests =
    "declare var require: any;\nconst assert = require('node:assert');\nfunction test() { let candidate = add; assert.deepEqual(candidate(1, 2), 3); }\ntest();\n";
  it('passes a right program, fails a type error without running it, fails a wrong answer', async () => {
    expect((await runTypeScript(`function add(x: number, y: number): number { return x + y; }\n${tests}`, LIMITS)).status).toBe('passed');
    const typeError = await runTypeScript(`function add(x: number, y: number): number { return 'a'; }\nconsole.log('ran');\n${tests}`, LIMITS);
    expect(typeError).toMatchObject({ status: 'failed', exceptionType: 'TypeScriptError', stdout: '' });
    expect(typeError.message).toMatch(/TS2322/);
    expect((await runTypeScript(`function add(x: number, y: number): number { return x - y; }\n${tests}`, LIMITS)).exceptionType).toBe('AssertionError');
  });
});
