import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { connectDocker, imageExists } from './docker-host.js';
import { SandboxBuildError } from './errors.js';
import { recipeImageTag, repoRoot } from './image-recipe.js';

export interface BuildImageOptions {
  /** Build sandbox/Dockerfile (needs a registry) instead of debootstrap + docker import. */
  fromDockerfile?: boolean;
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

/** Build the sandbox image with sandbox/build-image.sh; the tag names the recipe hash. */
export async function buildSandboxImage(options: BuildImageOptions = {}): Promise<BuildImageResult> {
  const started = performance.now();
  const docker = await connectDocker({ signal: options.signal });
  const image = await recipeImageTag();
  if (!options.force && (await imageExists(docker, image, options.signal))) {
    return { image, built: false, seconds: (performance.now() - started) / 1000 };
  }
  const args = [join(repoRoot(), 'sandbox', 'build-image.sh')];
  if (options.fromDockerfile) args.push('--from-dockerfile');
  if (options.force) args.push('--force');
  const child = spawn('bash', args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
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
    const reason = stderrTail.trim().split('\n').filter((line) => line.includes('error')).pop() ?? stderrTail.trim().split('\n').pop() ?? '';
    throw new SandboxBuildError(`building the sandbox image failed (exit ${code}): ${reason}`, {
      hint: options.fromDockerfile
        ? 'the Dockerfile build needs a registry for its FROM line; without one, run `evalpipe sandbox build` without --from-dockerfile (as root)'
        : 'the default build runs debootstrap and needs root and a Debian mirror (EVALPIPE_DEBIAN_MIRROR); see the log above',
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
