import { EvalpipeError } from '../util/errors.js';

const START_DOCKER_HINT =
  'start the Docker daemon (`sudo systemctl start docker`, or `sudo bash scripts/start-docker.sh` which also installs it), or point DOCKER_HOST at one';

/** Docker is not installed, the daemon is down, or it died mid-run. No sample is scored when this is thrown. */
export class SandboxUnavailableError extends EvalpipeError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('sandbox_unavailable', message, { hint: options.hint ?? START_DOCKER_HINT, cause: options.cause });
  }
}

/** The sandbox image for this recipe has not been built on this Docker host. */
export class SandboxImageMissingError extends EvalpipeError {
  constructor(image: string, options: { cause?: unknown } = {}) {
    super('sandbox_image_missing', `the sandbox image ${image} is not built on this Docker host`, {
      hint: 'run `evalpipe sandbox build` (or `bash scripts/build-sandbox-image.sh`) once, then try again',
      cause: options.cause,
    });
  }
}

/** Building the image failed (debootstrap, docker import, docker build). */
export class SandboxBuildError extends EvalpipeError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('sandbox_build', message, options);
  }
}
