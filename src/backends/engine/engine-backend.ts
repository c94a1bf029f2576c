import type { BackendKind } from '../backend-kind.js';
import { EngineProcess } from './engine-process.js';
import { enginePythonCommand } from './python-command.js';

/** Our own engine (cuda/), one long-lived Python child process speaking the JSON-lines protocol over stdio. */
export const engineBackend: BackendKind = {
  name: 'engine',
  description: "evalpipe's own engine (cuda/): a Python child process on this machine's GPU or CPU",
  start: (options) => {
    // --devices: each engine process sees only its own GPU
    const command =
      options.device === undefined || options.device === 'cpu' ? undefined : enginePythonCommand({ ...process.env, CUDA_VISIBLE_DEVICES: options.device });
    return EngineProcess.start({ signal: options.signal, echoStderr: options.verbose, ...(command ? { command } : {}) });
  },
};
