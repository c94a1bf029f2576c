import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';

/** The files whose contents name the image: sorted as `sha256sum` lists them in sandbox/build-image.sh. */
export const RECIPE_FILES = ['sandbox/Dockerfile', 'sandbox/build-image.sh', 'sandbox/packages.txt', 'sandbox/runner.py'] as const;

export const IMAGE_REPOSITORY = 'evalpipe-sandbox';

/**
 * The recipe hash: the first 12 hex digits of the sha256 of `sha256sum`'s output over RECIPE_FILES (so the shell
 * script and this function always agree). Images carry it as the label `evalpipe.recipe`.
 */
export async function recipeHash(root: string = packageRoot()): Promise<string> {
  let listing = '';
  for (const path of RECIPE_FILES) {
    const bytes = await readFile(join(root, path));
    listing += `${createHash('sha256').update(bytes).digest('hex')}  ${path}\n`;
  }
  return createHash('sha256').update(listing).digest('hex').slice(0, 12);
}

/** The image tag for the recipe on disk: `evalpipe-sandbox:<recipe hash>`. */
export async function recipeImageTag(root: string = packageRoot()): Promise<string> {
  return `${IMAGE_REPOSITORY}:${await recipeHash(root)}`;
}
