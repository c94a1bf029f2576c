import { hostname } from 'node:os';
import type Docker from 'dockerode';
import { CONTAINER_MEMORY_HEADROOM_MB, type SandboxLimits } from './sandbox-limits.js';

export const SANDBOX_UID = 10001;
export const RUNNER_COMMAND = ['python3', '-I', '/opt/evalpipe/runner.py'];
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
 */
export function sandboxContainerSpec(image: string, limits: SandboxLimits): Docker.ContainerCreateOptions {
  const memoryBytes = (limits.memoryMb + CONTAINER_MEMORY_HEADROOM_MB) * 1024 * 1024;
  return {
    Image: image,
    Cmd: RUNNER_COMMAND,
    User: `${SANDBOX_UID}:${SANDBOX_UID}`,
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
