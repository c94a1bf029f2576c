import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { MultiplEStatus } from '../../src/sandbox/isolated-vm/multipl-e-status.js';

/** The real tsc of the installed TypeScript 5.9 (the `typescript-api` alias), run as its own bin/tsc does. */
export const TSC_BIN = join(dirname(createRequire(import.meta.url).resolve('typescript-api/package.json')), 'bin', 'tsc');

export interface ProcessOutcome {
  exitCode: number | null;
  timedOut: boolean;
  stderr: string;
  stdout: string;
}

const STDERR_KEPT = 64 * 1024;

/** Run the real `node` binary on arguments, killed (SIGKILL) past `timeoutMs`; stdout and stderr kept up to 64 KiB each. */
export function runProcess(args: string[], options: { timeoutMs: number; cwd: string }): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    let stdout = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < STDERR_KEPT) stderr += chunk;
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < STDERR_KEPT) stdout += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, timedOut, stderr, stdout });
    });
  });
}

/** MultiPL-E's classification of a `node FILE` run (evaluation/src/eval_javascript.py, eval_ts.py's second half). */
export function classifyNodeRun(outcome: ProcessOutcome): MultiplEStatus {
  if (outcome.timedOut) return 'Timeout';
  if (outcome.exitCode === 0) return 'OK';
  if (outcome.stderr.includes('ERR_ASSERTION')) return 'AssertionError';
  if (outcome.stderr.includes('SyntaxError')) return 'SyntaxError';
  if (outcome.stderr.includes('ReferenceError')) return 'ReferenceError';
  return 'Exception';
}

export interface ReferenceLimits {
  /** node's wall-clock limit (MultiPL-E: 15 s). */
  nodeTimeoutMs: number;
  /** tsc's wall-clock limit (MultiPL-E: 15 s; longer here, a busy machine must not fail a compile). */
  tscTimeoutMs: number;
  /**
   * node's --max-old-space-size, MiB: MultiPL-E runs node with its default heap (gigabytes); a memory bomb fails
   * there either way, and a bounded heap keeps the reference from taking a shared machine's memory.
   */
  heapMb: number;
}

export interface ReferenceVerdict {
  status: MultiplEStatus;
  exitCode: number | null;
  stderr: string;
}

/** A .js file as MultiPL-E evaluates it: `node FILE.js`. */
export async function referenceJavaScript(file: string, limits: ReferenceLimits): Promise<ReferenceVerdict> {
  const run = await runProcess([`--max-old-space-size=${limits.heapMb}`, file], { timeoutMs: limits.nodeTimeoutMs, cwd: dirname(file) });
  return { status: classifyNodeRun(run), exitCode: run.exitCode, stderr: run.stderr };
}

/** A .ts file as MultiPL-E evaluates it: `tsc --target esnext FILE.ts` (non-zero exit: "SyntaxError", not run), then `node FILE.js`. */
export async function referenceTypeScript(file: string, limits: ReferenceLimits): Promise<ReferenceVerdict> {
  const compiled = await runProcess([TSC_BIN, '--target', 'esnext', file], { timeoutMs: limits.tscTimeoutMs, cwd: dirname(file) });
  if (compiled.timedOut) throw new Error(`tsc ran past ${limits.tscTimeoutMs} ms on ${file}: raise tscTimeoutMs`);
  // tsc writes its diagnostics to stdout
  if (compiled.exitCode !== 0) return { status: 'SyntaxError', exitCode: compiled.exitCode, stderr: compiled.stdout + compiled.stderr };
  return referenceJavaScript(file.replace(/\.ts$/, '.js'), limits);
}
