import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHumanEval } from '../../datasets/humaneval.js';
import { expectCleanSandboxCheck, probeDocker, requireSandbox, testHumanEvalPath } from '../../sandbox/docker-test-support.js';
import type { SandboxCheckReport } from '../../sandbox/sandbox-check.js';
import { recipeImageTag } from '../../sandbox/image-recipe.js';
import { cliInProcess } from '../../../test/support/cli-in-process.js';

const docker = await probeDocker();

const cli = cliInProcess;

describe('evalpipe sandbox', () => {
  it('image prints the recipe tag', async () => {
    const result = await cli(['sandbox', 'image']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(await recipeImageTag());
  });

  it('check with Docker down: one clear line on how to start it', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent/evalpipe-docker.sock';
    try {
      const path = testHumanEvalPath();
      const dir = await mkdtemp(join(tmpdir(), 'evalpipe-check-'));
      const file = path ?? join(dir, 'HumanEval.jsonl');
      if (!path) await writeFile(file, (await loadHumanEval()).problems.map((problem) => JSON.stringify(problem)).join('\n'));
      const result = await cli(['sandbox', 'check', '--humaneval', file]);
      await rm(dir, { recursive: true, force: true });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/evalpipe: Docker is not running or not installed: .* — start the Docker daemon .*scripts\/start-docker\.sh/);
    } finally {
      delete process.env.DOCKER_HOST;
    }
  });

  it.skipIf(docker.skip)('check: 164/164 canonical solutions pass, 0 known-wrong pass, limits hold', async () => {
    await requireSandbox(docker);
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-check-'));
    try {
      const path = testHumanEvalPath();
      const file = path ?? join(dir, 'HumanEval.jsonl');
      if (!path) await writeFile(file, (await loadHumanEval()).problems.map((problem) => JSON.stringify(problem)).join('\n'));
      const result = await cli(['sandbox', 'check', '--humaneval', file, '--json']);
      const report = JSON.parse(result.stdout) as SandboxCheckReport;
      expectCleanSandboxCheck(report);
      expect(report.ok).toBe(true);
      expect(result.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
