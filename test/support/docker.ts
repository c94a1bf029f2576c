/**
 * Shared by the Docker-backed tests (src/sandbox/*.test.ts, execute tests): find the real daemon and the image.
 * A missing daemon FAILS the tests with a clear message (always in CI, where CI=true); only a developer who sets
 * EVALPIPE_SKIP_DOCKER=1 outside CI may skip them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildSandboxImage } from '../../src/sandbox/build-image.js';
import { connectDocker } from '../../src/sandbox/docker-host.js';

import type { SandboxCheckReport } from '../../src/sandbox/sandbox-check.js';
import { packageRoot } from '../../src/util/package-root.js';

export interface DockerAvailability {
  available: boolean;
  /** Why it is not available, phrased for a test failure. */
  reason?: string;
  /** True when the tests may be skipped (EVALPIPE_SKIP_DOCKER=1 and not in CI). */
  skip: boolean;
}

export async function probeDocker(env: Record<string, string | undefined> = process.env): Promise<DockerAvailability> {
  const skipAllowed = env.EVALPIPE_SKIP_DOCKER === '1' && env.CI !== 'true';
  try {
    await connectDocker({ timeoutMs: 5000 });
    return { available: true, skip: false };
  } catch (error) {
    const reason = `Docker is needed for the sandbox tests and is not reachable: ${(error as Error).message}. Start it with \`sudo bash scripts/start-docker.sh\`${
      env.CI === 'true' ? '' : ' (or set EVALPIPE_SKIP_DOCKER=1 to skip these tests locally)'
    }`;
    return { available: false, reason, skip: skipAllowed };
  }
}

/** Fail loudly when Docker is missing; build the image when this recipe's is absent (a no-op otherwise). */
export async function requireSandbox(availability: DockerAvailability): Promise<string> {
  if (!availability.available) throw new Error(availability.reason);
  const { image } = await buildSandboxImage({ logStream: process.stderr });
  return image;
}

/** The HumanEval file the tests read (../shared/datasets relative to the repo root). */
export function testHumanEvalPath(): string | undefined {
  const path = join(packageRoot(), '..', 'shared', 'datasets', 'HumanEval.jsonl.gz');
  return existsSync(path) ? path : undefined;
}

/**
 * What a clean `sandbox check` reports for any sandbox image: every canonical solution passes, no known-wrong
 * completion does, the time and memory probes are classified, no infrastructure errors. Throws (with the part
 * that differs) otherwise; used by the tests of the debootstrap and the Dockerfile images alike.
 */
export function expectCleanSandboxCheck(report: SandboxCheckReport): void {
  expect(report.canonical).toMatchObject({ total: 164, passed: 164, notPassed: [] });
  expect(report.knownWrong).toMatchObject({ total: 164 * 5, passed: 0, wronglyPassed: [] }); // five wrong answers each, two of them forgeries
  expect(report.probes.map((probe) => [probe.name, probe.got])).toEqual([
    ['infinite loop', 'timeout'],
    ['8 GiB allocation', 'oom'],
  ]);
  expect(report.sandboxErrors).toBe(0);
}
