import { createRequire } from 'node:module';
import type ivm from 'isolated-vm';

let loadedIvm: typeof ivm | undefined;
/** isolated-vm, loaded on first use: a native addon, so a CLI that never runs JS (the GPU machine's bundle) starts without it. */
function ivmModule(): typeof ivm {
  loadedIvm ??= createRequire(import.meta.url)('isolated-vm') as typeof ivm;
  return loadedIvm;
}
import type { ExecutionStatus } from '../execution-result.js';
import { ISOLATE_RUNTIME } from './isolate-runtime.js';

/** Limits of one candidate's isolate. */
export interface JsLimits {
  /** Wall-clock limit of the candidate's run, in milliseconds. */
  timeoutMs: number;
  /** The isolate's heap limit (isolated-vm's `memoryLimit`, MiB; at least 8). */
  memoryMb: number;
  /** Bytes of console output kept per stream. */
  maxOutputBytes: number;
}

export const DEFAULT_JS_LIMITS: JsLimits = { timeoutMs: 5000, memoryMb: 256, maxOutputBytes: 64 * 1024 };

/** One JavaScript candidate's verdict, with the statuses of the Python sandbox (src/sandbox/execution-result.ts). */
export interface JsExecution {
  status: ExecutionStatus;
  passed: boolean;
  /** The uncaught error's class (AssertionError, TypeError, ...; `TypeScriptError` for a program tsc refuses). */
  exceptionType: string | null;
  message: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
}

/** What the host keeps of one stream: the first `limit` bytes, and the count of all. */
class Captured {
  private readonly parts: string[] = [];
  private kept = 0;
  bytes = 0;
  constructor(private readonly limit: number) {}
  write(text: string): void {
    const size = Buffer.byteLength(text);
    this.bytes += size;
    if (this.kept >= this.limit) return;
    const room = this.limit - this.kept;
    const part = size <= room ? text : Buffer.from(text).subarray(0, room).toString('utf8');
    this.parts.push(part);
    this.kept += Math.min(size, room);
  }
  text(): string {
    return this.parts.join('');
  }
}

const MESSAGE_CHARS = 2000;
/** Extra wall time the host waits past the isolate's own timeout before it disposes the isolate itself. */
const HOST_GRACE_MS = 2000;

/**
 * Isolates between candidates, by memory limit. Each runs one candidate at a time, each candidate in a fresh
 * context of its own (a new global object and set of builtins: nothing of one candidate's globals or prototypes
 * reaches the next), so a memory bomb or a timeout takes down only its own isolate, which is then disposed rather
 * than reused. An isolate goes back here only after a candidate that passed or failed normally, while its heap
 * holds less than a quarter of its limit, and for at most MAX_RUNS_PER_ISOLATE candidates.
 */
const idleIsolates = new Map<number, ivm.Isolate[]>();
const runsOf = new WeakMap<ivm.Isolate, number>();
const MAX_RUNS_PER_ISOLATE = 1000;
/** Idle isolates kept per memory limit: more than the cores would only hold memory. */
const MAX_IDLE_ISOLATES = 16;

let runtimeSnapshot: ivm.ExternalCopy<ArrayBuffer> | undefined;
/**
 * A new isolate with `memoryLimit`, started from a snapshot holding our runtime (made once per process): each of its
 * contexts begins with the runtime already installed, instead of compiling and running it per candidate.
 */
export function newRuntimeIsolate(memoryMb: number): ivm.Isolate {
  runtimeSnapshot ??= ivmModule().Isolate.createSnapshot([{ code: ISOLATE_RUNTIME, filename: 'evalpipe-runtime.js' }]);
  return new (ivmModule().Isolate)({ memoryLimit: memoryMb, snapshot: runtimeSnapshot });
}

function takeIsolate(memoryMb: number): ivm.Isolate {
  const idle = idleIsolates.get(memoryMb);
  while (idle && idle.length > 0) {
    const isolate = idle.pop()!;
    if (!isolate.isDisposed) return isolate;
  }
  const isolate = newRuntimeIsolate(memoryMb);
  runsOf.set(isolate, 0);
  return isolate;
}

function returnIsolate(isolate: ivm.Isolate, memoryMb: number): void {
  const runs = (runsOf.get(isolate) ?? 0) + 1;
  runsOf.set(isolate, runs);
  const idle = idleIsolates.get(memoryMb) ?? [];
  idleIsolates.set(memoryMb, idle);
  let heap: ivm.HeapStatistics | undefined;
  try {
    heap = isolate.getHeapStatisticsSync();
  } catch {
    heap = undefined;
  }
  const used = heap ? heap.used_heap_size + heap.externally_allocated_size : Number.POSITIVE_INFINITY;
  if (isolate.isDisposed || runs >= MAX_RUNS_PER_ISOLATE || used > (memoryMb * 2 ** 20) / 4 || idle.length >= MAX_IDLE_ISOLATES) {
    if (!isolate.isDisposed) isolate.dispose();
    return;
  }
  idle.push(isolate);
}

/** One hop into the isolate: the candidate ($1) run with the output callback ($0), its verdict back as JSON. */
export const RUN_CLOSURE = 'return globalThis.$evalpipeRun($1, $0);';

/**
 * Run one JavaScript program as Node runs a CommonJS file (in the module wrapper, `require('assert')` available),
 * in a fresh context of an isolated-vm isolate (a V8 heap with `memoryLimit`, running one candidate at a time): no
 * Node APIs at all (no process, require beyond assert, file system, network, timers, Buffer), nothing of the
 * host's globals; console output captured. The isolate is reused for later candidates only after a normal pass or
 * fail with little of its heap in use (see idleIsolates); after a timeout, an oom or an error it is disposed. Never
 * throws for anything the program does: its outcome is the status.
 */
export async function runJavaScript(source: string, limits: JsLimits = DEFAULT_JS_LIMITS): Promise<JsExecution> {
  const stdout = new Captured(limits.maxOutputBytes);
  const stderr = new Captured(limits.maxOutputBytes);
  const started = performance.now();
  const memoryMb = Math.max(8, limits.memoryMb);
  let isolate: ivm.Isolate | undefined;
  let context: ivm.Context | undefined;
  let reusable = false;
  let hostTimer: NodeJS.Timeout | undefined;
  let hostTimedOut = false;
  let candidateRunning = false;
  const result = (status: ExecutionStatus, exceptionType: string | null, message: string | null): JsExecution => ({
    status,
    passed: status === 'passed',
    exceptionType,
    message: message === null ? null : message.slice(0, MESSAGE_CHARS),
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    stdout: stdout.text(),
    stderr: stderr.text(),
    stdoutBytes: stdout.bytes,
    stderrBytes: stderr.bytes,
  });
  try {
    isolate = takeIsolate(memoryMb);
    context = await isolate.createContext();
    const write = new (ivmModule().Callback)((fd: number, text: string) => (fd === 2 ? stderr : stdout).write(String(text)));
    const owned = isolate;
    const hostLimit = new Promise<never>((_, reject) => {
      hostTimer = setTimeout(() => {
        hostTimedOut = true;
        if (!owned.isDisposed) owned.dispose();
        reject(new Error('host wall-clock limit'));
      }, limits.timeoutMs + HOST_GRACE_MS);
    });
    candidateRunning = true;
    const verdictJson = await Promise.race([
      context.evalClosure(RUN_CLOSURE, [write, source], { timeout: limits.timeoutMs, result: { copy: true } }),
      hostLimit,
    ]);
    const verdict = JSON.parse(String(verdictJson)) as { ok: boolean; type?: string; message?: string };
    if (verdict.ok) {
      reusable = true;
      return result('passed', null, null);
    }
    if (verdict.type === 'RangeError' && /Array buffer allocation failed/.test(verdict.message ?? ''))
      return result('oom', 'RangeError', verdict.message ?? null);
    reusable = true;
    return result('failed', verdict.type ?? 'Error', verdict.message ?? '');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (hostTimedOut || /timed out/i.test(message)) return result('timeout', null, `ran past ${limits.timeoutMs} ms`);
    if (isolate?.isDisposed || /memory limit|disposed/i.test(message)) return result('oom', null, `exceeded the isolate's ${limits.memoryMb} MiB memory limit`);
    // isolated-vm throws a promise rejection nothing handled out of the call, as the rejected value: Node exits 1
    // on it (an unhandled rejection is an uncaught error since Node 15), so the candidate failed with that error
    if (candidateRunning) return result('failed', error instanceof Error ? error.name : typeof error, `unhandled promise rejection: ${message}`);
    return result('sandbox_error', error instanceof Error ? error.name : null, message);
  } finally {
    if (hostTimer) clearTimeout(hostTimer);
    if (context && !isolate?.isDisposed) context.release();
    if (isolate) {
      if (reusable) returnIsolate(isolate, memoryMb);
      else if (!isolate.isDisposed) isolate.dispose();
    }
  }
}
