import { spawn, type ChildProcess } from 'node:child_process';
import { enginePythonCommand } from '../../src/backends/engine/python-command.js';

export interface EngineHttpServer {
  /** The OpenAI-compatible base URL, e.g. http://127.0.0.1:41234/v1. */
  baseUrl: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr: () => string;
  stop: () => Promise<void>;
}

/**
 * Start the real engine behind its OpenAI-compatible HTTP server (`python -m evalpipe_engine http`) on a free
 * loopback port, and resolve once it prints `listening on http://HOST:PORT`.
 */
export async function startEngineHttpServer(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<EngineHttpServer> {
  const python = enginePythonCommand();
  const child = spawn(python.executable, ['-m', 'evalpipe_engine', 'http', '--port', '0', ...args], {
    env: { ...python.env, ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the engine HTTP server did not start within ${options.timeoutMs ?? 300_000} ms:\n${stderr}`)),
      options.timeoutMs ?? 300_000,
    );
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const match = /listening on (http:\/\/[^\s]+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!.replace(/\/+$/, ''));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the engine HTTP server exited with ${code} before listening:\n${stderr}`));
    });
  });
  const origin = await listening;
  return {
    baseUrl: `${origin}/v1`,
    child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
