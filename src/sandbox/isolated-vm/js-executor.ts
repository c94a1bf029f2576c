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
 * Run one JavaScript program as Node runs a CommonJS file (in the module wrapper, `require('assert')` available),
 * in a fresh isolated-vm isolate of its own: a new V8 heap with `memoryLimit`, no Node APIs at all (no process,
 * require beyond assert, file system, network, timers, Buffer), nothing of the host's globals; console output
 * captured. A fresh isolate per candidate rather than a fresh context in a pooled one: a context shares its
 * isolate's heap, so one candidate's memory bomb would dispose the isolate under the others and its garbage would
 * count against the next; an isolate costs about a millisecond more, which the throughput benchmark shows we can
 * afford. Never throws for anything the program does: its outcome is the status.
 */
export async function runJavaScript(source: string, limits: JsLimits = DEFAULT_JS_LIMITS): Promise<JsExecution> {
  const stdout = new Captured(limits.maxOutputBytes);
  const stderr = new Captured(limits.maxOutputBytes);
  const started = performance.now();
  let isolate: ivm.Isolate | undefined;
  let hostTimer: NodeJS.Timeout | undefined;
  let hostTimedOut = false;
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
    isolate = new (ivmModule().Isolate)({ memoryLimit: Math.max(8, limits.memoryMb) });
    const context = await isolate.createContext();
    await context.global.set('$evalpipeWrite', new (ivmModule().Callback)((fd: number, text: string) => (fd === 2 ? stderr : stdout).write(String(text))));
    await context.eval(ISOLATE_RUNTIME, { timeout: limits.timeoutMs });
    const run: ivm.Reference<(source: string) => string> = await context.global.get('$evalpipeRun', { reference: true });
    const owned = isolate;
    const hostLimit = new Promise<never>((_, reject) => {
      hostTimer = setTimeout(() => {
        hostTimedOut = true;
        if (!owned.isDisposed) owned.dispose();
        reject(new Error('host wall-clock limit'));
      }, limits.timeoutMs + HOST_GRACE_MS);
    });
    const verdictJson = await Promise.race([run.apply(undefined, [source], { timeout: limits.timeoutMs, result: { copy: true } }), hostLimit]);
    const verdict = JSON.parse(String(verdictJson)) as { ok: boolean; type?: string; message?: string };
    if (verdict.ok) return result('passed', null, null);
    if (verdict.type === 'RangeError' && /Array buffer allocation failed/.test(verdict.message ?? ''))
      return result('oom', 'RangeError', verdict.message ?? null);
    return result('failed', verdict.type ?? 'Error', verdict.message ?? '');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (hostTimedOut || /timed out/i.test(message)) return result('timeout', null, `ran past ${limits.timeoutMs} ms`);
    if (isolate?.isDisposed || /memory limit|disposed/i.test(message)) return result('oom', null, `exceeded the isolate's ${limits.memoryMb} MiB memory limit`);
    return result('sandbox_error', error instanceof Error ? error.name : null, message);
  } finally {
    if (hostTimer) clearTimeout(hostTimer);
    if (isolate && !isolate.isDisposed) isolate.dispose();
  }
}
