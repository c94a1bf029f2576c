import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** sha256 and size of a whole file, streamed (no full copy in memory). */
export async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { signal });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  const { size } = await stat(path);
  return { sha256: hash.digest('hex'), bytes: size };
}
