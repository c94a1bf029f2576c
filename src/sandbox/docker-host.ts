import Docker from 'dockerode';
import { SandboxImageMissingError, SandboxUnavailableError } from './errors.js';

export interface DockerHostOptions {
  /** A dockerode instance; default: from DOCKER_HOST, else the local socket /var/run/docker.sock. */
  docker?: Docker;
  signal?: AbortSignal;
  /** How long to wait for the daemon to answer (default 10 s). */
  timeoutMs?: number;
}

/** Settle with `promise`, or reject with the signal's reason as soon as it aborts (the promise is left to settle). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Describe where dockerode is pointed, for error messages. */
export function describeDockerHost(docker: Docker): string {
  const modem = docker.modem as unknown as { socketPath?: string; host?: string; port?: number; protocol?: string };
  if (typeof modem.socketPath === 'string') return modem.socketPath;
  return `${modem.protocol ?? 'http'}://${modem.host ?? 'localhost'}${modem.port ? `:${modem.port}` : ''}`;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Turn a dockerode connection failure into one clear line; other errors pass through unchanged. */
export function explainDockerError(error: unknown, docker: Docker): unknown {
  if (error instanceof SandboxUnavailableError) return error;
  const code = errorCode(error);
  const where = describeDockerHost(docker);
  if (code === 'ENOENT') {
    return new SandboxUnavailableError(`Docker is not running or not installed: there is no daemon socket at ${where}`, { cause: error });
  }
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new SandboxUnavailableError(`the Docker daemon at ${where} is down (${code})`, { cause: error });
  }
  if (code === 'EACCES') {
    return new SandboxUnavailableError(`permission denied on the Docker socket ${where}`, {
      hint: 'run as root, or add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again)',
      cause: error,
    });
  }
  return error;
}

export function isDockerConnectionError(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || error instanceof SandboxUnavailableError;
}

/** Connect to Docker and make sure the daemon answers; throws SandboxUnavailableError with how to start it. */
export async function connectDocker(options: DockerHostOptions = {}): Promise<Docker> {
  const docker = options.docker ?? new Docker();
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    await raceAbort(docker.ping() as Promise<unknown>, signal);
  } catch (error) {
    options.signal?.throwIfAborted();
    if (timeout.aborted) {
      throw new SandboxUnavailableError(`the Docker daemon at ${describeDockerHost(docker)} did not answer within ${options.timeoutMs ?? 10_000} ms`, {
        cause: error,
      });
    }
    const explained = explainDockerError(error, docker);
    if (explained instanceof SandboxUnavailableError) throw explained;
    throw new SandboxUnavailableError(`the Docker daemon at ${describeDockerHost(docker)} did not answer a ping: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return docker;
}

/** Throws SandboxImageMissingError (naming `evalpipe sandbox build`) when the image is absent. */
export async function ensureImage(docker: Docker, image: string, signal?: AbortSignal): Promise<void> {
  try {
    await raceAbort(docker.getImage(image).inspect(), signal);
  } catch (error) {
    if (statusCode(error) === 404) throw new SandboxImageMissingError(image, { cause: error });
    throw explainDockerError(error, docker);
  }
}

export async function imageExists(docker: Docker, image: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await ensureImage(docker, image, signal);
    return true;
  } catch (error) {
    if (error instanceof SandboxImageMissingError) return false;
    throw error;
  }
}
