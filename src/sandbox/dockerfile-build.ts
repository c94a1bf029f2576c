import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { explainDockerError, imageExists, isDockerConnectionError } from './docker-host.js';
import { SandboxBuildError } from './errors.js';

import { SANDBOX_LABEL } from './container-spec.js';
import { packageRoot } from '../util/package-root.js';

/** sandbox/Dockerfile's FROM when no --base-image is given (a registry is needed for it). */
export const DEFAULT_BASE_IMAGE = 'debian:bookworm-slim';

export interface DockerfileBuildOptions {
  /** The tag the image gets. */
  tag: string;
  /** The recipe hash, for the `evalpipe.recipe` label. */
  recipeHash: string;
  /** The Dockerfile's BASE_IMAGE build argument (default: the Dockerfile's own, debian:bookworm-slim). */
  baseImage?: string;
  signal?: AbortSignal;
  logStream: NodeJS.WritableStream;
}

interface BuildMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** The tag of the base image the default (debootstrap) build leaves: `sandbox/build-image.sh --print-base-tag`. */
export async function debootstrapBaseTag(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [join(packageRoot(), 'sandbox', 'build-image.sh'), '--print-base-tag'], { encoding: 'utf8' });
  return stdout.trim();
}

/** Read the daemon's build stream: log its lines, return the first error it reports (undefined when none). */
async function followBuild(stream: NodeJS.ReadableStream, logStream: NodeJS.WritableStream): Promise<string | undefined> {
  let pending = '';
  let failure: string | undefined;
  const handle = (line: string): void => {
    if (!line.trim()) return;
    let message: BuildMessage;
    try {
      message = JSON.parse(line) as BuildMessage;
    } catch {
      logStream.write(`${line}\n`);
      return;
    }
    if (message.stream) logStream.write(message.stream);
    else if (message.status) logStream.write(`${message.status}\n`);
    const error = message.errorDetail?.message ?? message.error;
    if (error) {
      failure ??= error.trim();
      logStream.write(`${error.trim()}\n`);
    }
  };
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(handle);
  }
  handle(pending);
  return failure;
}

/** Say what to pass instead of a base image this host lacks; names the debootstrap base when this host has it. */
async function baseImageHint(docker: Docker, signal: AbortSignal | undefined): Promise<string> {
  const local = await debootstrapBaseTag().catch(() => undefined);
  const example =
    local && (await imageExists(docker, local, signal).catch(() => false))
      ? `e.g. --base-image ${local}, which this host has`
      : 'e.g. the evalpipe-sandbox-base:<hash> image that `evalpipe sandbox build` (without --from-dockerfile) leaves';
  return `without a registry, pass --base-image with an image this Docker host has whose python3 has the standard library (${example}), or build without --from-dockerfile`;
}

/**
 * Build sandbox/Dockerfile through the daemon's build API (classic builder: a local base image is used as it is,
 * and only an absent one is pulled). RUN steps use the host's network, so no Docker bridge is needed, and the
 * Dockerfile runs apt-get only when the base image's python3 lacks the standard library.
 */
export async function buildFromDockerfile(docker: Docker, options: DockerfileBuildOptions): Promise<void> {
  const baseImage = options.baseImage ?? DEFAULT_BASE_IMAGE;
  options.logStream.write(`sandbox build: building ${options.tag} from sandbox/Dockerfile (base ${baseImage})\n`);
  let failure: string | undefined;
  try {
    const stream = await docker.buildImage(
      { context: join(packageRoot(), 'sandbox'), src: ['Dockerfile', 'runner.py'] },
      {
        t: options.tag,
        dockerfile: 'Dockerfile',
        buildargs: options.baseImage === undefined ? {} : { BASE_IMAGE: options.baseImage },
        labels: { [SANDBOX_LABEL]: '1', 'evalpipe.recipe': options.recipeHash },
        networkmode: 'host',
        rm: true,
        forcerm: true,
        version: '1',
        abortSignal: options.signal,
      },
    );
    failure = await followBuild(stream, options.logStream);
  } catch (error) {
    options.signal?.throwIfAborted();
    if (isDockerConnectionError(error)) throw explainDockerError(error, docker);
    failure = (error as Error).message;
  }
  if (failure === undefined && (await imageExists(docker, options.tag, options.signal))) return;
  const reason = failure ?? `the daemon reported no error, but ${options.tag} is not there`;
  if (!(await imageExists(docker, baseImage, options.signal))) {
    throw new SandboxBuildError(`the base image ${baseImage} is not on this Docker host and could not be pulled (${reason})`, {
      hint: await baseImageHint(docker, options.signal),
    });
  }
  throw new SandboxBuildError(`building sandbox/Dockerfile from ${baseImage} failed: ${reason}`, {
    hint: 'see the build log above; a base image whose python3 lacks the standard library needs apt-get and a Debian mirror (or pass --base-image with one that has it)',
  });
}
