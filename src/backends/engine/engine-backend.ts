import type { BackendKind } from '../backend-kind.js';
import { EngineProcess } from './engine-process.js';

/** Our own engine (cuda/), one long-lived Python child process speaking the JSON-lines protocol over stdio. */
export const engineBackend: BackendKind = {
  name: 'engine',
  description: "evalpipe's own engine (cuda/): a Python child process on this machine's GPU or CPU",
  start: (options) => EngineProcess.start({ signal: options.signal, echoStderr: options.verbose }),
};
