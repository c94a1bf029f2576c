import type Docker from 'dockerode';
import { CONTAINER_MEMORY_HEADROOM_MB, type SandboxLimits } from './sandbox-limits.js';

export const SANDBOX_UID = 10001;
export const RUNNER_COMMAND = ['python3', '-I', '/opt/evalpipe/runner.py'];
export const SANDBOX_LABEL = 'evalpipe.sandbox';

/**
 * The container every candidate runs in. The security model, in one place:
 * no network, read-only root, a small noexec tmpfs /tmp, no /dev/shm (IPC namespace `none`), a non-root user,
 * every capability dropped, no-new-privileges, and memory (no swap), pids and CPU limits.
 * stdin stays open for the runner's job stream and closes when we detach (StdinOnce), so a crashed evalpipe
 * leaves no container behind: the runner sees end-of-input, exits, and AutoRemove deletes the container.
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
    Labels: { [SANDBOX_LABEL]: '1' },
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
