import type { BackendKind } from './backend-kind.js';
import { engineBackend } from './engine/engine-backend.js';
import { openAiBackend } from './openai/openai-backend.js';

/**
 * The only list of model backends. A backend is a folder under src/backends/ implementing ModelBackend
 * (model-backend.ts) plus one line here; `--backend` accepts these names.
 */
export const BACKEND_REGISTRY: readonly BackendKind[] = [engineBackend, openAiBackend];

/** The backend a run uses when --backend is not given (and the one runs made before the option existed used). */
export const DEFAULT_BACKEND = engineBackend.name;

export const BACKEND_NAMES: readonly string[] = BACKEND_REGISTRY.map((backend) => backend.name);

export function backendNamed(name: string | undefined): BackendKind {
  const wanted = name ?? DEFAULT_BACKEND;
  const backend = BACKEND_REGISTRY.find((candidate) => candidate.name === wanted);
  if (!backend) throw new Error(`no backend named ${wanted}`); // the CLI refuses unknown names before a run starts
  return backend;
}
