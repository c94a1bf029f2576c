import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { log } from '../util/log.js';
import { sandboxContainerSpec, type VerdictMode } from './container-spec.js';
import { explainDockerError } from './docker-host.js';
import type { SandboxLimits } from './sandbox-limits.js';

/** One verdict from sandbox/runner.py (see its docstring for the protocol). */
export interface RunnerVerdict {
  id: string | null;
  /** `unsupported` only in an isolated verdict: the tests pass the entry point something that is not plain data. */
  status: 'passed' | 'failed' | 'timeout' | 'oom' | 'sandbox_error' | 'unsupported';
  exception_type: string | null;
  message: string | null;
  duration_ms: number;
  stdout: string;
  stderr: string;
  stdout_bytes: number;
  stderr_bytes: number;
  exit_code: number | null;
  signal: string | null;
  /** False when the runner could not kill every leftover process or empty /tmp: replace the container. */
  clean: boolean;
}

/** One result line: the default verdict, and for a job with `isolated`, the isolated one as well. */
export interface RunnerReply extends RunnerVerdict {
  status: Exclude<RunnerVerdict['status'], 'unsupported'>;
  isolated?: RunnerVerdict;
}

/** The pieces of an isolated verdict: what the candidate's process defines, and the tests that call it. */
export interface IsolatedProgram {
  /** prompt + completion: defines the entry point (and whatever else the completion writes). */
  candidateProgram: string;
  /** The data set's own code the tests need (the original prompt's helpers) and the tests themselves. */
  verifierProgram: string;
  /** The statement that runs the tests, e.g. `check(has_close_elements)`. */
  verifierCheck: string;
  entryPoint: string;
}

export interface RunnerJob {
  program: string;
  timeoutMs: number;
  memoryMb: number;
  maxOutputBytes: number;
  /** Also make the isolated verdict (the container must have been started for isolated verdicts). */
  isolated?: IsolatedProgram;
}

/** The container (or our link to it) failed: an infrastructure problem, never the candidate's fault. */
export class SandboxContainerError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, 'name', { value: 'SandboxContainerError', enumerable: false });
  }
}

const READY_TIMEOUT_MS = 30_000;
/** Beyond the candidate's own timeout: the runner's clean-up (at most 2 s) and the round trip. */
const REPLY_MARGIN_MS = 10_000;

/**
 * A warm container running sandbox/runner.py, attached over Docker's stdin/stdout stream.
 * It runs one job at a time; the pool decides when to replace it.
 */
export class SandboxContainer {
  runs = 0;
  private alive = true;
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  private endError: Error | undefined;
  private stderrTail = '';
  private sequence = 0;

  private constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    private readonly stream: NodeJS.ReadWriteStream,
  ) {}

  get id(): string {
    return this.container.id;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** Create, attach and start a container, then wait for the runner's ready line. */
  static async start(
    docker: Docker,
    image: string,
    limits: SandboxLimits,
    options: { verdicts?: VerdictMode; signal?: AbortSignal } = {},
  ): Promise<SandboxContainer> {
    const { signal } = options;
    signal?.throwIfAborted();
    let container: Docker.Container | undefined;
    try {
      container = await docker.createContainer(sandboxContainerSpec(image, limits, options.verdicts));
      const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      const sandbox = new SandboxContainer(docker, container, stream);
      sandbox.listen();
      await container.start();
      const readyLine = await sandbox.nextLine(READY_TIMEOUT_MS, signal);
      const ready = JSON.parse(readyLine) as { event?: string; message?: string; pid?: number; isolating?: boolean };
      if (ready.event !== 'ready') {
        await sandbox.destroy();
        throw new SandboxContainerError(`the sandbox runner did not start: ${ready.message ?? readyLine}`);
      }
      if (options.verdicts === 'isolated' && ready.isolating !== true) {
        await sandbox.destroy();
        throw new SandboxContainerError(`the sandbox runner in ${image} cannot make isolated verdicts (an image from before they existed?)`);
      }
      if (ready.pid !== 1) log.warn(`the sandbox runner is not PID 1 in ${container.id.slice(0, 12)}: leftover processes are cleaned per process group only`);
      return sandbox;
    } catch (error) {
      if (container) await container.remove({ force: true }).catch(() => undefined);
      const explained = explainDockerError(error, docker);
      if (explained !== error || error instanceof SandboxContainerError) throw explained;
      if (signal?.aborted) throw signal.reason;
      throw new SandboxContainerError(`could not start a sandbox container: ${(error as Error).message}`, { cause: error });
    }
  }

  private listen(): void {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(this.stream, stdout, stderr);
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      let newline = this.buffered.indexOf('\n');
      while (newline !== -1) {
        this.lines.push(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
        newline = this.buffered.indexOf('\n');
      }
      this.deliver();
    });
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
      log.debug(`sandbox ${this.container.id.slice(0, 12)} stderr: ${chunk.trimEnd()}`);
    });
    const ended = (error?: Error): void => {
      if (!this.alive && this.endError) return;
      this.alive = false;
      const tail = this.stderrTail.trim();
      this.endError = new SandboxContainerError(
        `the sandbox container ${this.container.id.slice(0, 12)} went away${error ? ` (${error.message})` : ''}${tail ? `; runner stderr: ${tail}` : ''}`,
        { cause: error },
      );
      this.deliver();
    };
    this.stream.on('end', () => ended());
    this.stream.on('close', () => ended());
    this.stream.on('error', (error: Error) => ended(error));
  }

  private deliver(): void {
    if (!this.waiter) return;
    const line = this.lines.shift();
    if (line !== undefined) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve(line);
    } else if (this.endError) {
      const { reject } = this.waiter;
      this.waiter = undefined;
      reject(this.endError);
    }
  }

  private nextLine(timeoutMs: number, signal?: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new SandboxContainerError(`the sandbox runner did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiter = undefined;
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        resolve: (line) => {
          cleanup();
          resolve(line);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      this.deliver();
    });
  }

  /** Run one program; rejects (SandboxContainerError) only when the container itself failed. */
  async run(job: RunnerJob, signal?: AbortSignal): Promise<RunnerReply> {
    if (!this.alive) throw this.endError ?? new SandboxContainerError('the sandbox container is closed');
    if (this.waiter) throw new SandboxContainerError('the sandbox container is busy');
    this.runs += 1;
    const id = `j${++this.sequence}`;
    const request = {
      id,
      program: job.program,
      timeout_s: job.timeoutMs / 1000,
      memory_mb: job.memoryMb,
      max_output_bytes: job.maxOutputBytes,
      ...(job.isolated
        ? {
            isolated: {
              candidate_program: job.isolated.candidateProgram,
              verifier_program: job.isolated.verifierProgram,
              verifier_check: job.isolated.verifierCheck,
              entry_point: job.isolated.entryPoint,
            },
          }
        : {}),
    };
    // An isolated job runs the candidate twice (default, then isolated), each with its own timeout and clean-up.
    const replyPromise = this.nextLine((job.isolated ? 2 : 1) * (job.timeoutMs + REPLY_MARGIN_MS), signal);
    this.stream.write(`${JSON.stringify(request)}\n`);
    let line: string;
    try {
      line = await replyPromise;
    } catch (error) {
      void this.destroy();
      throw error;
    }
    let reply: RunnerReply;
    try {
      reply = JSON.parse(line) as RunnerReply;
    } catch (error) {
      void this.destroy();
      throw new SandboxContainerError(`the sandbox runner sent a line that is not JSON: ${line.slice(0, 200)}`, { cause: error });
    }
    if (reply.id !== id) {
      void this.destroy();
      throw new SandboxContainerError(`the sandbox runner answered job ${String(reply.id)} while ${id} was expected`);
    }
    return reply;
  }

  /** Stop and remove the container; safe to call twice. */
  async destroy(): Promise<void> {
    this.alive = false;
    this.endError ??= new SandboxContainerError('the sandbox container is closed');
    try {
      this.stream.end();
    } catch {
      // the stream may already be gone
    }
    await this.container.remove({ force: true }).catch(() => undefined);
  }
}
