import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHumanEval } from '../../tasks/humaneval/dataset.js';
import { expectCleanSandboxCheck, probeDocker, requireSandbox, testHumanEvalPath } from '../../../test/support/docker.js';
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

  it.skipIf(docker.skip)('check --verdicts isolated: 164/164 canonical pass isolated, none of 9 wrong answers per problem does', async () => {
    await requireSandbox(docker);
    const path = testHumanEvalPath();
    const file = path ?? join(await mkdtemp(join(tmpdir(), 'evalpipe-check-')), 'HumanEval.jsonl');
    if (!path) await writeFile(file, (await loadHumanEval()).problems.map((problem) => JSON.stringify(problem)).join('\n'));
    const result = await cli(['sandbox', 'check', '--humaneval', file, '--json', '--verdicts', 'isolated']);
    const report = JSON.parse(result.stdout) as SandboxCheckReport;
    expect(report.verdicts).toBe('isolated');
    expect(report.canonical).toMatchObject({ total: 164, passed: 164, notPassed: [] });
    expect(report.knownWrong).toMatchObject({ total: 164 * 9, passed: 0, wronglyPassed: [] });
    expect(report.notIsolated).toEqual([]);
    // the cheats are real: the default way lets them through on the problems they target
    expect(report.passedOnlyTheDefaultWay?.['always-equal']).toBeGreaterThan(100);
    expect(report.passedOnlyTheDefaultWay?.['skips-asserts']).toBeGreaterThan(0);
    expect(report.passedOnlyTheDefaultWay?.['patches-builtins']).toBeGreaterThan(0);
    expect(report.passedOnlyTheDefaultWay?.['forges-message']).toBeUndefined();
    expect(report.sandboxErrors).toBe(0);
    expect(result.code).toBe(0);
  });
});
