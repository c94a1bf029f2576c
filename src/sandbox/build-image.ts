import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { UsageError } from '../util/errors.js';
import { connectDocker, imageExists } from './docker-host.js';
import { buildFromDockerfile } from './dockerfile-build.js';
import { SandboxBuildError } from './errors.js';
import { IMAGE_REPOSITORY, recipeHash } from './image-recipe.js';
import { packageRoot } from '../util/package-root.js';

export interface BuildImageOptions {
  /** Build sandbox/Dockerfile instead of debootstrap + docker import. */
  fromDockerfile?: boolean;
  /**
   * With fromDockerfile: the Dockerfile's BASE_IMAGE (default debian:bookworm-slim, from a registry). A local image
   * whose python3 has the standard library (e.g. the debootstrap build's evalpipe-sandbox-base:<hash>) builds offline.
   */
  baseImage?: string;
  /** With fromDockerfile: tag the image this instead of the recipe's `evalpipe-sandbox:<hash>`. */
  tag?: string;
  /** Rebuild even when the image for this recipe exists. */
  force?: boolean;
  signal?: AbortSignal;
  /** Where the build's log goes (default: our stderr). */
  logStream?: NodeJS.WritableStream;
}

export interface BuildImageResult {
  image: string;
  /** False when the image for this recipe was already there. */
  built: boolean;
  seconds: number;
}

function checkOptions(options: BuildImageOptions): void {
  for (const [flag, value] of [
    ['--base-image', options.baseImage],
    ['--tag', options.tag],
  ] as const) {
    if (value === undefined) continue;
    if (!options.fromDockerfile) throw new UsageError(`${flag} only applies to the Dockerfile build`, { hint: `add --from-dockerfile, or leave out ${flag}` });
    if (!/^[^\s]+$/.test(value))
      throw new UsageError(`${flag} needs an image name, got ${JSON.stringify(value)}`, { hint: `e.g. ${flag} evalpipe-sandbox-base:<hash>` });
  }
}

/**
 * Build the sandbox image: by default with sandbox/build-image.sh (debootstrap + docker import), with
 * fromDockerfile from sandbox/Dockerfile through the daemon's build API. The tag names the recipe hash (unless `tag`).
 */
export async function buildSandboxImage(options: BuildImageOptions = {}): Promise<BuildImageResult> {
  const started = performance.now();
  checkOptions(options);
  const docker = await connectDocker({ signal: options.signal });
  const hash = await recipeHash();
  const image = options.tag ?? `${IMAGE_REPOSITORY}:${hash}`;
  if (!options.force && (await imageExists(docker, image, options.signal))) {
    return { image, built: false, seconds: (performance.now() - started) / 1000 };
  }
  if (options.fromDockerfile) {
    const logStream = options.logStream ?? process.stderr;
    await buildFromDockerfile(docker, { tag: image, recipeHash: hash, baseImage: options.baseImage, signal: options.signal, logStream });
    return { image, built: true, seconds: (performance.now() - started) / 1000 };
  }
  const args = [join(packageRoot(), 'sandbox', 'build-image.sh')];
  if (options.force) args.push('--force');
  const child = spawn('bash', args, { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
  let stdout = '';
  let stderrTail = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-4000);
    (options.logStream ?? process.stderr).write(chunk);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).catch((error: unknown) => {
    options.signal?.throwIfAborted();
    throw new SandboxBuildError(`could not run sandbox/build-image.sh: ${(error as Error).message}`, { hint: 'bash must be installed', cause: error });
  });
  if (code !== 0) {
    const reason =
      stderrTail
        .trim()
        .split('\n')
        .filter((line) => line.includes('error'))
        .pop() ??
      stderrTail.trim().split('\n').pop() ??
      '';
    throw new SandboxBuildError(`building the sandbox image failed (exit ${code}): ${reason}`, {
      hint: 'the default build runs debootstrap and needs root and a Debian mirror (EVALPIPE_DEBIAN_MIRROR); see the log above',
    });
  }
  const tag = stdout.trim().split('\n').pop();
  if (tag !== image) {
    throw new SandboxBuildError(`sandbox/build-image.sh built ${tag ?? 'nothing'} but the recipe names ${image}`, {
      hint: 'the recipe hash in sandbox/build-image.sh and src/sandbox/image-recipe.ts disagree: this is a bug',
    });
  }
  return { image, built: true, seconds: (performance.now() - started) / 1000 };
}
