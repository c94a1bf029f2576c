import { execFileSync } from 'node:child_process';
import { mkdtemp, cp, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recipeImageTag } from './image-recipe.js';
import { packageRoot } from '../util/package-root.js';

describe('recipeImageTag', () => {
  it('names the same tag as sandbox/build-image.sh --print-tag', async () => {
    const fromScript = execFileSync('bash', [join(packageRoot(), 'sandbox', 'build-image.sh'), '--print-tag'], { encoding: 'utf8' }).trim();
    expect(await recipeImageTag()).toBe(fromScript);
    expect(fromScript).toMatch(/^evalpipe-sandbox:[0-9a-f]{12}$/);
  });

  it('changes when any recipe file changes, so a changed recipe builds a new image', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'evalpipe-recipe-'));
    try {
      await cp(join(packageRoot(), 'sandbox'), join(copy, 'sandbox'), { recursive: true });
      const before = await recipeImageTag(copy);
      expect(before).toBe(await recipeImageTag());
      await appendFile(join(copy, 'sandbox', 'packages.txt'), 'python3-numpy\n');
      const after = await recipeImageTag(copy);
      expect(after).not.toBe(before);
      const fromScript = execFileSync('bash', [join(copy, 'sandbox', 'build-image.sh'), '--print-tag'], { encoding: 'utf8' }).trim();
      expect(after).toBe(fromScript);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('the debootstrap base tag (--print-base-tag) ignores the Dockerfile, so a Dockerfile change reuses the base', async () => {
    const printBase = (root: string): string =>
      execFileSync('bash', [join(root, 'sandbox', 'build-image.sh'), '--print-base-tag'], { encoding: 'utf8' }).trim();
    const copy = await mkdtemp(join(tmpdir(), 'evalpipe-recipe-'));
    try {
      await cp(join(packageRoot(), 'sandbox'), join(copy, 'sandbox'), { recursive: true });
      const before = printBase(copy);
      expect(before).toMatch(/^evalpipe-sandbox-base:[0-9a-f]{12}$/);
      expect(before).toBe(printBase(packageRoot()));
      await appendFile(join(copy, 'sandbox', 'Dockerfile'), '# a comment\n');
      expect(printBase(copy)).toBe(before);
      expect(await recipeImageTag(copy)).not.toBe(await recipeImageTag());
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});
