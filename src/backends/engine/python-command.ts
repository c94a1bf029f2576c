import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../util/package-root.js';

export interface PythonCommand {
  executable: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How to start the engine: EVALPIPE_PYTHON if set, else the project virtualenv (.venv), else python3 on PATH.
 * cuda/ goes on PYTHONPATH so `python -m evalpipe_engine` finds the package without installing it. `args` are the
 * engine's subcommand and its arguments (default `serve`, the JSON-lines protocol; `['http', '--port', ...]` the
 * OpenAI-compatible HTTP server).
 */
export function enginePythonCommand(env: NodeJS.ProcessEnv = process.env, args: readonly string[] = ['serve']): PythonCommand {
  const root = packageRoot();
  const venvPython = join(root, '.venv', 'bin', 'python');
  const executable = env.EVALPIPE_PYTHON ?? (existsSync(venvPython) ? venvPython : 'python3');
  const cudaDir = join(root, 'cuda');
  const pythonPath = env.PYTHONPATH ? `${cudaDir}:${env.PYTHONPATH}` : cudaDir;
  return {
    executable,
    args: ['-m', 'evalpipe_engine', ...args],
    env: { ...env, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' },
  };
}
