import { readFile } from 'node:fs/promises';
import { RunStoreError } from '../../util/errors.js';

/**
 * Read a JSON file of a run directory: undefined when it does not exist, a RunStoreError naming the file when it
 * cannot be read or is not valid JSON (`corruptHint` says how to recover).
 */
export async function readRunJson(path: string, corruptHint: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RunStoreError(`cannot read ${path}`, { cause: error, hint: 'check the file permissions of the run directory' });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new RunStoreError(`${path} is corrupt (not valid JSON)`, { cause: error, hint: corruptHint });
  }
}
