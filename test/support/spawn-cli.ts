import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED_HUMANEVAL = join(REPO_ROOT, '..', 'shared', 'datasets', 'HumanEval.jsonl.gz');
/** The shared test copy of HumanEval; without it, the hub data set (needs network). */
export const HUMANEVAL_FILE = existsSync(SHARED_HUMANEVAL) ? SHARED_HUMANEVAL : 'openai/openai_humaneval';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** tsx's loader by absolute URL, so the CLI can run from any working directory (sweep writes under ./results). */
const TSX_LOADER = import.meta.resolve('tsx');

/** Start the real CLI (from source) in its own process. */
export function startCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, join(REPO_ROOT, 'test', 'support', 'cli-entry.ts'), ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<CliResult>((resolve) => {
    child.once('exit', (code, signal) => {
      // 'exit' can fire before the pipes drain: wait for 'close' too.
      child.once('close', () => resolve({ code, signal, stdout, stderr }));
      if (child.stdout!.closed && child.stderr!.closed) resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}
