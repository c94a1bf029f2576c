import { hostname } from 'node:os';
import type Docker from 'dockerode';
import pLimit, { type LimitFunction } from 'p-limit';
import { UsageError } from '../util/errors.js';
import { log } from '../util/log.js';
import { connectDocker, ensureImage, isDockerConnectionError, explainDockerError } from './docker-host.js';
import { SandboxUnavailableError } from './errors.js';
import type { ExecutionResult } from './execution-result.js';
import { recipeImageTag } from './image-recipe.js';
import { CONTROLLER_LABEL, SANDBOX_LABEL, type VerdictMode } from './container-spec.js';
import { SandboxContainer, type IsolatedProgram, type RunnerReply, type RunnerVerdict } from './sandbox-container.js';
import { defaultConcurrency, resolveLimits, type SandboxLimits } from './sandbox-limits.js';

export interface SandboxPoolOptions extends Partial<SandboxLimits> {
  /** Image tag (default: this recipe's `evalpipe-sandbox:<hash>`). */
  image?: string;
  docker?: Docker;
  /** Containers (= candidates running at once); default: the number of CPU cores. */
  concurrency?: number;
  /** Replace a container after this many candidates (default 500), even when nothing went wrong. */
  maxRunsPerContainer?: number;
  /** Tries per candidate when the infrastructure fails (default 3); then it is recorded as sandbox_error. */
  maxAttempts?: number;
  /** `isolated`: containers that can also run the tests in a process of their own (see execute()'s `isolated`). */
  verdicts?: VerdictMode;
  signal?: AbortSignal;
}

export interface SandboxPoolStats {
  containersStarted: number;
  containersReplaced: number;
  infrastructureRetries: number;
}

function replaceAfter(verdict: RunnerVerdict): boolean {
  return !verdict.clean || verdict.status === 'timeout' || verdict.status === 'oom' || verdict.status === 'sandbox_error' || verdict.signal !== null;
}

/** Statuses after which a container is not trusted with another candidate. */
function mustReplace(reply: RunnerReply): boolean {
  return replaceAfter(reply) || (reply.isolated !== undefined && replaceAfter(reply.isolated));
}

function isInfrastructureFailure(reply: RunnerReply): boolean {
  return reply.status === 'sandbox_error' || reply.isolated?.status === 'sandbox_error';
}

/** The result of a reply: with an isolated verdict, that one counts (unless the problem cannot run isolated). */
function toResult(reply: RunnerReply, attempts: number): ExecutionResult {
  const counted = reply.isolated && reply.isolated.status !== 'unsupported' ? reply.isolated : reply;
  const status = counted.status as ExecutionResult['status'];
  return {
    status,
    passed: status === 'passed',
    exceptionType: counted.exception_type,
    message: counted.message === null ? null : counted.message.slice(0, 500),
    durationMs: counted.duration_ms,
    stdout: counted.stdout,
    stderr: counted.stderr,
    stdoutBytes: counted.stdout_bytes,
    stderrBytes: counted.stderr_bytes,
    exitCode: counted.exit_code,
    signal: counted.signal,
    attempts,
    ...(reply.isolated
      ? {
          isolation: {
            outcome: reply.isolated.status === 'unsupported' ? 'unsupported' : 'checked',
            default: { status: reply.status, exceptionType: reply.exception_type, message: reply.message === null ? null : reply.message.slice(0, 500) },
            reason: reply.isolated.status === 'unsupported' ? reply.isolated.message : null,
          },
        }
      : {}),
  };
}

type Spare = Promise<SandboxContainer | Error>;

export interface ExecuteOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Bytes of stdout/stderr kept for this program [default: the pool's limit]. */
  maxOutputBytes?: number;
  isolated?: IsolatedProgram;
}

/**
 * Remove the sandbox containers an earlier evalpipe left: those that never ran or already stopped and are over a
 * minute old (killed between creating and starting one), and running ones whose controller, a process of this
 * host named by their CONTROLLER_LABEL, is gone (their runner normally notices that itself within 0.1 s).
 */
async function removeOrphans(docker: Docker): Promise<void> {
  try {
    const cutoff = Date.now() / 1000 - 60;
    const all = await docker.listContainers({ all: true, filters: { label: [`${SANDBOX_LABEL}=1`] } });
    const stopped = new Set(['created', 'exited', 'dead']);
    const orphans = all.filter((entry) => (stopped.has(entry.State) ? entry.Created < cutoff : controllerIsGone(entry.Labels?.[CONTROLLER_LABEL])));
    await Promise.all(
      orphans.map((entry) =>
        docker
          .getContainer(entry.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  } catch (error) {
    log.debug(`could not list leftover sandbox containers: ${(error as Error).message}`);
  }
}

/** True for `<this host>:<pid>` of a process that no longer exists; false when unknown or elsewhere. */
function controllerIsGone(label: string | undefined): boolean {
  const match = label?.match(/^(.*):(\d+)$/);
  if (!match || match[1] !== hostname()) return false;
  try {
    process.kill(Number(match[2]), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Warm sandbox containers behind a p-limit queue. Each candidate gets a container to itself; a container is
 * replaced after a timeout, an OOM, a crash, an unclean clean-up, or maxRunsPerContainer runs (its successor
 * starts in the background at once). Infrastructure failures are retried on a fresh container; when the Docker
 * daemon itself is gone, execute() rejects with SandboxUnavailableError instead of scoring anything.
 */
export class SandboxPool {
  readonly limits: SandboxLimits;
  readonly concurrency: number;
  readonly stats: SandboxPoolStats = { containersStarted: 0, containersReplaced: 0, infrastructureRetries: 0 };
  private readonly idle: SandboxContainer[] = [];
  private readonly spares: Spare[] = [];
  private readonly busy = new Set<SandboxContainer>();
  private readonly limit: LimitFunction;
  private closed = false;

  private constructor(
    readonly docker: Docker,
    readonly image: string,
    limits: SandboxLimits,
    concurrency: number,
    private readonly maxRunsPerContainer: number,
    private readonly maxAttempts: number,
    readonly verdicts: VerdictMode,
  ) {
    this.limits = limits;
    this.concurrency = concurrency;
    this.limit = pLimit(concurrency);
  }

  /** Connect to Docker, check the image, and start `concurrency` warm containers. */
  static async open(options: SandboxPoolOptions = {}): Promise<SandboxPool> {
    const limits = resolveLimits(options);
    const concurrency = options.concurrency ?? defaultConcurrency();
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new UsageError(`the sandbox concurrency must be a positive integer, got ${concurrency}`, { hint: 'pass --concurrency 1 or more' });
    }
    const docker = await connectDocker({ docker: options.docker, signal: options.signal });
    const image = options.image ?? (await recipeImageTag());
    await ensureImage(docker, image, options.signal);
    await removeOrphans(docker);
    const verdicts = options.verdicts ?? 'default';
    const pool = new SandboxPool(docker, image, limits, concurrency, options.maxRunsPerContainer ?? 500, options.maxAttempts ?? 3, verdicts);
    const started = await Promise.allSettled(Array.from({ length: concurrency }, () => pool.startContainer(options.signal)));
    for (const outcome of started) if (outcome.status === 'fulfilled') pool.idle.push(outcome.value);
    const failure = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failure) {
      await pool.close();
      throw explainDockerError(failure.reason, docker);
    }
    return pool;
  }

  /** The image's content id (sha256:...), as Docker reports it: what a run records to detect a rebuilt image. */
  async imageId(): Promise<string> {
    return (await this.docker.getImage(this.image).inspect()).Id;
  }

  private async startContainer(signal?: AbortSignal): Promise<SandboxContainer> {
    const container = await SandboxContainer.start(this.docker, this.image, this.limits, { verdicts: this.verdicts, signal });
    this.stats.containersStarted += 1;
    if (this.closed) {
      await container.destroy();
      throw new Error('the sandbox pool is closed');
    }
    return container;
  }

  private async acquire(signal?: AbortSignal): Promise<SandboxContainer> {
    while (this.idle.length > 0) {
      const container = this.idle.pop();
      if (container?.isAlive) return container;
    }
    const spare = this.spares.shift();
    if (spare) {
      const container = await spare;
      if (!(container instanceof Error) && container.isAlive) return container;
      if (container instanceof Error) log.debug(`a replacement sandbox container failed to start: ${container.message}`);
    }
    return this.startContainer(signal);
  }

  private release(container: SandboxContainer, replace: boolean): void {
    this.busy.delete(container);
    if (!replace && container.isAlive && container.runs < this.maxRunsPerContainer && !this.closed) {
      this.idle.push(container);
      return;
    }
    void container.destroy();
    if (this.closed) return;
    this.stats.containersReplaced += 1;
    this.spares.push(this.startContainer().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))));
  }

  /** Is the daemon still there? Used to tell "a container failed" from "Docker is gone". */
  private async daemonAlive(): Promise<boolean> {
    try {
      await connectDocker({ docker: this.docker, timeoutMs: 5000 });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Run one program (prompt + completion + tests + check) under the limits and classify it. With `isolated` (a
   * pool opened with verdicts `isolated` only), the same candidate also runs with its tests in a process of their
   * own, and that verdict is the one returned (`isolation` holds the default one).
   */
  execute(program: string, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    if (options.isolated && this.verdicts !== 'isolated') {
      return Promise.reject(
        new UsageError('isolated verdicts need a pool opened with verdicts "isolated"', { hint: 'open the pool with { verdicts: "isolated" }' }),
      );
    }
    return this.limit(() => this.executeNow(program, options));
  }

  private async executeNow(program: string, options: ExecuteOptions): Promise<ExecutionResult> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt += 1) {
      options.signal?.throwIfAborted();
      if (this.closed) throw new Error('the sandbox pool is closed');
      let container: SandboxContainer | undefined;
      try {
        container = await this.acquire(options.signal);
        this.busy.add(container);
        const reply = await container.run(
          {
            program,
            timeoutMs: options.timeoutMs ?? this.limits.timeoutMs,
            memoryMb: this.limits.memoryMb,
            maxOutputBytes: options.maxOutputBytes ?? this.limits.maxOutputBytes,
            isolated: options.isolated,
          },
          options.signal,
        );
        this.release(container, mustReplace(reply));
        if (!isInfrastructureFailure(reply)) return toResult(reply, attempt);
        const failed = reply.status === 'sandbox_error' ? reply : reply.isolated!;
        lastError = new Error(`${failed.exception_type ?? 'error'}: ${failed.message ?? ''}`);
      } catch (error) {
        if (container) this.release(container, true);
        options.signal?.throwIfAborted();
        if (isDockerConnectionError(explainDockerError(error, this.docker)) || !(await this.daemonAlive())) {
          const explained = explainDockerError(error, this.docker);
          if (explained instanceof SandboxUnavailableError) throw explained;
          throw new SandboxUnavailableError(`the Docker daemon stopped answering during the run (${(error as Error).message})`, { cause: error });
        }
        lastError = error;
      }
      this.stats.infrastructureRetries += 1;
      log.debug(`sandbox attempt ${attempt} failed: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    }
    const message = lastError instanceof Error ? lastError.message : String(lastError);
    return {
      status: 'sandbox_error',
      passed: false,
      exceptionType: 'SandboxError',
      message: message.slice(0, 500),
      durationMs: 0,
      stdout: '',
      stderr: '',
      stdoutBytes: 0,
      stderrBytes: 0,
      exitCode: null,
      signal: null,
      attempts: this.maxAttempts,
    };
  }

  /** Ids of the containers this pool holds now (idle and busy). */
  containerIds(): string[] {
    return [...this.idle, ...this.busy].map((container) => container.id);
  }

  /** Remove every container this pool started. */
  async close(): Promise<void> {
    this.closed = true;
    this.limit.clearQueue();
    const containers = [...this.idle.splice(0), ...this.busy];
    this.busy.clear();
    const spares = await Promise.all(this.spares.splice(0));
    for (const spare of spares) if (!(spare instanceof Error)) containers.push(spare);
    await Promise.all(containers.map((container) => container.destroy()));
  }
}
