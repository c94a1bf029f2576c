import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The directory holding evalpipe's package.json (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  if (cached) return cached;
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(directory, 'package.json');
    if (existsSync(candidate)) {
      const parsed = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (parsed.name === 'evalpipe') {
        cached = directory;
        return directory;
      }
    }
    const parent = dirname(directory);
    if (parent === directory) throw new Error('cannot find the evalpipe package root');
    directory = parent;
  }
}

export function packageVersion(): string {
  const parsed = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return parsed.version;
}
