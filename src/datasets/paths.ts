import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';

/** Where data-set specs live (datasets/*.json, committed). */
export function specsDir(): string {
  return join(packageRoot(), 'datasets');
}

/** The default cache root (datasets/cache, git-ignored). */
export function defaultCacheDir(): string {
  return join(packageRoot(), 'datasets', 'cache');
}
