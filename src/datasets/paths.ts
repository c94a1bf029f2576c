import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file sits at src/datasets/ (or dist/datasets/ once built). */
export function projectRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Where data-set specs live (datasets/*.json, committed). */
export function specsDir(): string {
  return join(projectRoot(), 'datasets');
}

/** The default cache root (datasets/cache, git-ignored). */
export function defaultCacheDir(): string {
  return join(projectRoot(), 'datasets', 'cache');
}
