import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeDocker, requireSandbox } from '../../test/support/docker.js';
import { SandboxImageMissingError, SandboxUnavailableError } from './errors.js';
import { SandboxPool } from './sandbox-pool.js';
import { sandboxContainerSpec } from './container-spec.js';
import { DEFAULT_LIMITS, resolveLimits } from './sandbox-limits.js';

const docker = await probeDocker();

describe('sandbox bad input', () => {
  it('Docker down or not installed: one clear error saying how to start it', async () => {
    const missing = new Docker({ socketPath: '/nonexistent/evalpipe/docker.sock' });
    const error = await SandboxPool.open({ docker: missing }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as SandboxUnavailableError).toUserLine()).toMatch(
      /Docker is not running or not installed: there is no daemon socket at \/nonexistent\/evalpipe\/docker\.sock — start the Docker daemon .*scripts\/start-docker\.sh/,
    );
  });

  it('refuses nonsense limits naming the flag', () => {
    expect(() => resolveLimits({ timeoutMs: 0 })).toThrow(/timeout must be a positive number.*/);
    expect(() => resolveLimits({ memoryMb: 1.5 })).toThrow(/memory limit must be a positive integer/);
    expect(() => resolveLimits({ memoryMb: 16 })).toThrow(/too small/);
  });

  it('the container spec carries the whole security model', () => {
    const spec = sandboxContainerSpec('img', DEFAULT_LIMITS);
    expect(spec.User).toBe('10001:10001');
    expect(spec.NetworkDisabled).toBe(true);
    expect(spec.HostConfig).toMatchObject({
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      IpcMode: 'none',
      PidsLimit: 128,
      NanoCpus: 1e9,
      Memory: (1024 + 256) * 1024 * 1024,
      MemorySwap: (1024 + 256) * 1024 * 1024,
      Privileged: false,
    });
    expect(spec.HostConfig?.Tmpfs?.['/tmp']).toMatch(/noexec.*size=64m/);
    expect(spec.HostConfig?.CapAdd).toBeUndefined();
  });

  it('an isolating container differs only in its runner: root with six capabilities, started with --isolating', () => {
    const plain = sandboxContainerSpec('img', DEFAULT_LIMITS);
    const isolating = sandboxContainerSpec('img', DEFAULT_LIMITS, 'isolated');
    expect(isolating.User).toBe('0:0');
    expect(isolating.Cmd).toEqual([...(plain.Cmd as string[]), '--isolating']);
    expect(isolating.HostConfig?.CapAdd).toEqual(['DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID', 'SETPCAP']);
    const { User: _user, Cmd: _cmd, HostConfig: { CapAdd: _caps, ...hostRest } = {}, ...rest } = isolating;
    const { User: _u, Cmd: _c, HostConfig: plainHost = {}, ...plainRest } = plain;
    expect(rest).toEqual(plainRest);
    expect(hostRest).toEqual(plainHost);
  });
});

describe.skipIf(docker.skip)('sandbox pool (real Docker daemon)', () => {
  let image: string;
  beforeAll(async () => {
    image = await requireSandbox(docker);
  });

  it('image missing: the error names `evalpipe sandbox build`', async () => {
    const error = await SandboxPool.open({ image: 'evalpipe-sandbox:000000000000' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SandboxImageMissingError);
    expect((error as Error & { toUserLine(): string }).toUserLine()).toMatch(/evalpipe-sandbox:000000000000 is not built .* run `evalpipe sandbox build`/);
  });

  describe('with a pool', () => {
    let pool: SandboxPool;
    beforeAll(async () => {
      pool = await SandboxPool.open({ image, concurrency: 1, timeoutMs: 3000, maxRunsPerContainer: 3 });
    });
    afterAll(async () => {
      await pool?.close();
    });

    it('classifies passed and failed with exception type and message, and keeps output', async () => {
      const passed = await pool.execute('print("hello")\n');
      expect(passed).toMatchObject({ status: 'passed', passed: true, stdout: 'hello\n', exceptionType: null, attempts: 1 });
      expect(passed.durationMs).toBeGreaterThan(0);
      const failed = await pool.execute('def check(x):\n    assert x == 2, "wanted 2"\ncheck(1)\n');
      expect(failed).toMatchObject({ status: 'failed', passed: false, exceptionType: 'AssertionError', message: 'wanted 2' });
      expect(failed.stderr).toContain('AssertionError: wanted 2');
      const exited = await pool.execute('import sys\nsys.exit(0)\n');
      expect(exited).toMatchObject({ status: 'failed', exceptionType: 'SystemExit' });
      const early = await pool.execute('import os\nos._exit(0)\n');
      expect(early).toMatchObject({ status: 'failed', exceptionType: 'EarlyExit' });
      const crashed = await pool.execute('import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n');
      expect(crashed).toMatchObject({ status: 'failed', exceptionType: 'SIGSEGV', signal: 'SIGSEGV' });
    });

    it('replaces a container after N runs', async () => {
      const before = pool.stats.containersReplaced;
      for (let i = 0; i < 4; i += 1) expect((await pool.execute('pass\n')).status).toBe('passed');
      expect(pool.stats.containersReplaced).toBeGreaterThan(before);
    });

    it('a container killed mid-candidate is a sandbox error, retried on a fresh container, never a failure', async () => {
      const running = pool.execute('import time\ntime.sleep(1.5)\nprint("survived")\n');
      await new Promise((resolve) => setTimeout(resolve, 400));
      const [id] = pool.containerIds();
      expect(id).toBeDefined();
      await pool.docker.getContainer(id!).kill();
      const result = await running;
      expect(result).toMatchObject({ status: 'passed', stdout: 'survived\n', attempts: 2 });
      expect(pool.stats.infrastructureRetries).toBeGreaterThanOrEqual(1);
    });

    it('stops waiting when aborted', async () => {
      const controller = new AbortController();
      const running = pool.execute('import time\ntime.sleep(2)\n', { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('stop now')), 200);
      const started = performance.now();
      await expect(running).rejects.toThrow('stop now');
      expect(performance.now() - started).toBeLessThan(1500);
      expect((await pool.execute('print(1)\n')).status).toBe('passed');
    });
  });
});
