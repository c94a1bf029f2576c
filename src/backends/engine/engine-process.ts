import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { EngineProcessError, EngineProtocolError, EngineRequestError, EngineRequestInvalidError } from './engine-errors.js';
import { ENGINE_SCHEMA_DIR, isEngineOp, schemaViolation, type SchemaPart } from './engine-schemas.js';
import type { BackendCallOptions, BenchCallOptions, GenerateCallOptions, ModelBackend, ScoreCallOptions } from '../model-backend.js';
import { enginePythonCommand, type PythonCommand } from './python-command.js';
import {
  ENGINE_OPS,
  ENGINE_PROTOCOL_VERSION,
  type BenchParams,
  type BenchResult,
  type EngineErrorPayload,
  type EngineInfo,
  type EngineLine,
  type EngineOp,
  type EngineProgress,
  type GeneratedSample,
  type GenerateParams,
  type GenerateResult,
  type LoadParams,
  type LoadResult,
  type ReadyEvent,
  type ScoreParams,
  type ScoreResult,
} from './protocol.js';
import { StderrTail } from './stderr-tail.js';
import { log } from '../../util/log.js';

export interface EngineStartOptions {
  command?: PythonCommand;
  /** How long to wait for the `ready` line (Python + torch import can take a while). */
  readyTimeoutMs?: number;
  signal?: AbortSignal;
  /** Forward engine stderr lines to our stderr as they arrive (debug logging). */
  echoStderr?: boolean;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  onEvent?: (event: string, data: unknown) => void;
}

interface Pending {
  op: EngineOp;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onEvent: ((event: string, data: unknown) => void) | undefined;
}

/**
 * One long-lived engine child process, the ModelBackend of our own engine. Requests carry ids; the engine answers
 * each with one final line and may stream events before it. Every request is checked against its op's schema
 * (schemas/engine/<op>.json) before it is sent, and every result and event against the same file when it arrives.
 * A dead engine is noticed at once: every pending and later request fails with an EngineProcessError that carries
 * the tail of the engine's stderr.
 */
export class EngineProcess implements ModelBackend {
  readonly ready: ReadyEvent;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private deathError: EngineProcessError | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly stderrTail: StderrTail,
    ready: ReadyEvent,
    lines: AsyncIterable<string>,
    private readonly exited: Promise<void>,
  ) {
    this.ready = ready;
    void this.readLines(lines);
    void exited.then(() => this.failAll());
  }

  static async start(options: EngineStartOptions = {}): Promise<EngineProcess> {
    const command = options.command ?? enginePythonCommand();
    const stderrTail = new StderrTail();
    // Its own process group: a Ctrl-C at the terminal reaches the CLI alone, which stops the engine itself after
    // flushing (otherwise the engine dies of the SIGINT first, with a traceback, racing the CLI's own handling).
    // A CLI that dies any other way closes the engine's stdin, and the engine exits.
    const child = spawn(command.executable, command.args, { env: command.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderrTail.push(chunk);
      if (options.echoStderr) process.stderr.write(chunk.replace(/^/gm, '[engine] '));
    });
    child.stdin.on('error', () => undefined); // a dead engine is reported through 'exit'
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        resolve();
      });
    });
    const spawnFailed = new Promise<never>((_, reject) => {
      child.once('error', (error) =>
        reject(
          new EngineProcessError(`cannot start the engine with ${command.executable}`, {
            stderrTail: stderrTail.text(),
            hint: 'run `bash scripts/setup.sh` to create the Python environment (.venv), or set EVALPIPE_PYTHON',
            cause: error,
          }),
        ),
      );
    });
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity })[Symbol.asyncIterator]();
    const timeoutMs = options.readyTimeoutMs ?? 180_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const abandon = (message: string): never => {
      child.kill('SIGKILL');
      throw new EngineProcessError(message, { stderrTail: stderrTail.text(), exitCode: exitInfo?.code, signal: exitInfo?.signal });
    };
    const aborted = new Promise<'aborted'>((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
    const first = await Promise.race([lines.next(), exited.then(() => 'exited' as const), aborted, spawnFailed]);
    if (first === 'aborted') {
      return abandon(timeout.aborted ? `the engine did not become ready within ${timeoutMs / 1000} s` : 'engine start was cancelled');
    }
    if (first === 'exited' || first.done) {
      await settlesWithin(exited, 2000);
      return abandon(`the engine exited during start-up (exit code ${exitInfo?.code ?? 'unknown'}${exitInfo?.signal ? `, signal ${exitInfo.signal}` : ''})`);
    }
    const ready = parseReady(first.value);
    if (!ready) return abandon(`the engine's first line was not a ready event: ${first.value.slice(0, 200)}`);
    if (ready.protocol !== ENGINE_PROTOCOL_VERSION) {
      return abandon(`the engine speaks protocol ${ready.protocol}, this CLI speaks ${ENGINE_PROTOCOL_VERSION}`);
    }
    const engine = new EngineProcess(child, stderrTail, ready, { [Symbol.asyncIterator]: () => lines }, exited);
    engine.exitInfo = () => exitInfo;
    return engine;
  }

  private exitInfo: () => { code: number | null; signal: NodeJS.Signals | null } | undefined = () => undefined;

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.deathError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async info(options: BackendCallOptions = {}): Promise<EngineInfo> {
    return this.request<EngineInfo>('info', {}, options);
  }

  async load(params: LoadParams, options: BackendCallOptions = {}): Promise<LoadResult> {
    return this.request<LoadResult>('load', { ...params }, options);
  }

  async score(params: ScoreParams, options: ScoreCallOptions = {}): Promise<ScoreResult> {
    const { onProgress, ...rest } = options;
    const onEvent = onProgress && ((event: string, data: unknown) => event === 'progress' && onProgress(data as EngineProgress));
    return this.request<ScoreResult>('score', { ...params }, { ...rest, onEvent });
  }

  async generate(params: GenerateParams, options: GenerateCallOptions = {}): Promise<GenerateResult> {
    const { onSample, ...rest } = options;
    const onEvent = onSample && ((event: string, data: unknown) => event === 'partial' && onSample(data as GeneratedSample));
    return this.request<GenerateResult>('generate', { ...params }, { ...rest, onEvent });
  }

  async bench(params: BenchParams, options: BenchCallOptions = {}): Promise<BenchResult> {
    const { onProgress, ...rest } = options;
    const onEvent = onProgress && ((event: string, data: unknown) => event === 'progress' && onProgress(data as EngineProgress));
    return this.request<BenchResult>('bench', { ...params }, { ...rest, onEvent });
  }

  async close(timeoutMs?: number): Promise<void> {
    await this.shutdown(timeoutMs);
  }

  /**
   * Send one request and wait for its final line. Params that break the op's schema are refused here, before
   * anything is sent (EngineRequestInvalidError, one line naming the op and the field).
   */
  async request<T>(op: string, params: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<T> {
    if (!isEngineOp(op)) {
      throw new EngineRequestInvalidError(op, `unknown op ${JSON.stringify(op)}`, { field: 'op', hint: `use one of ${ENGINE_OPS.join(', ')}` });
    }
    // What the engine will read: JSON drops undefined fields, so those are checked as absent.
    const line = JSON.stringify({ op, params });
    const sent = (JSON.parse(line) as { params: Record<string, unknown> }).params;
    const invalid = schemaViolation(op, 'params', sent);
    if (invalid) {
      const schemaHint = `the ${op} request must match ${ENGINE_SCHEMA_DIR}/${op}.json`;
      throw new EngineRequestInvalidError(op, invalid.message, {
        field: invalid.where || 'params',
        hint: invalid.hint ? `${invalid.hint} (${schemaHint})` : schemaHint,
      });
    }
    if (this.deathError) throw this.deathError;
    const id = `r${this.nextId++}`;
    const signals: AbortSignal[] = [];
    if (options.signal) signals.push(options.signal);
    if (options.timeoutMs !== undefined) signals.push(AbortSignal.timeout(options.timeoutMs));
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject, onEvent: options.onEvent });
    });
    this.child.stdin.write(`${JSON.stringify({ id, op, params: sent })}\n`);
    if (!signal) return (await result) as T;
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = (): void => {
        this.pending.delete(id);
        // The engine handles one request at a time, so a request we stop waiting for would block the next:
        // the only safe way out is to stop the process. The caller resumes with a fresh engine.
        this.kill();
        const timedOut = options.timeoutMs !== undefined && !options.signal?.aborted;
        reject(
          new EngineProcessError(timedOut ? `engine ${op} did not answer within ${options.timeoutMs! / 1000} s` : `engine ${op} was cancelled`, {
            stderrTail: this.stderrTail.text(),
            hint: 'the engine was stopped; run the same command again to resume',
          }),
        );
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      void result.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => undefined);
    });
    return (await Promise.race([result, aborted])) as T;
  }

  /** Ask the engine to exit; kill it if it does not within `timeoutMs`. */
  async shutdown(timeoutMs: number = 10_000): Promise<void> {
    if (!this.alive) return;
    try {
      await this.request('shutdown', {}, { timeoutMs });
    } catch {
      // already dead or unresponsive: kill below
    }
    if (!(await settlesWithin(this.exited, timeoutMs))) this.kill();
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  stderr(): string {
    return this.stderrTail.text();
  }

  private async readLines(lines: AsyncIterable<string>): Promise<void> {
    try {
      for await (const line of lines) this.handleLine(line);
    } catch (error) {
      log.debug(`engine stdout closed: ${String(error)}`);
    }
  }

  private handleLine(line: string): void {
    if (line.trim() === '') return;
    let message: EngineLine;
    try {
      message = JSON.parse(line) as EngineLine;
    } catch {
      log.warn(`engine wrote a non-protocol line to stdout: ${line.slice(0, 200)}`);
      return;
    }
    const id = message.id;
    if (id === null || id === undefined) {
      if ('ok' in message && !message.ok) log.warn(`engine error without request id: ${message.error.message}`);
      return;
    }
    const pending = this.pending.get(id);
    if (!pending) return;
    if ('event' in message) {
      const invalid = answerViolation(pending.op, message.event as SchemaPart, message.data);
      if (invalid) this.fail(id, pending, invalid);
      else pending.onEvent?.(message.event, message.data);
      return;
    }
    if (message.ok) {
      const invalid = answerViolation(pending.op, 'result', message.result);
      if (invalid) return this.fail(id, pending, invalid);
      this.pending.delete(id);
      pending.resolve(message.result);
    } else {
      this.pending.delete(id);
      pending.reject(requestError(pending.op, message.error));
    }
  }

  /** The engine broke the protocol on this request: it fails; the engine's later lines for it are ignored. */
  private fail(id: string, pending: Pending, error: EngineProtocolError): void {
    this.pending.delete(id);
    pending.reject(error);
  }

  private failAll(): void {
    const info = this.exitInfo();
    const how = info?.signal ? `was killed by ${info.signal}` : `exited with code ${info?.code ?? 'unknown'}`;
    this.deathError = new EngineProcessError(`the engine process ${how}`, {
      stderrTail: this.stderrTail.text(),
      exitCode: info?.code,
      signal: info?.signal,
      hint: 'finished work is saved; run the same command again to resume',
    });
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(this.deathError);
    }
  }
}

function parseReady(line: string): ReadyEvent | undefined {
  try {
    const parsed = JSON.parse(line) as { event?: string; data?: ReadyEvent };
    return parsed.event === 'ready' && parsed.data ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** An event's data or a result that breaks `<op>.json`, as an error; undefined when it conforms. */
function answerViolation(op: EngineOp, part: SchemaPart, value: unknown): EngineProtocolError | undefined {
  const invalid = schemaViolation(op, part, value);
  if (!invalid) return undefined;
  const what = part === 'result' ? 'a result' : `a ${part} event`;
  return new EngineProtocolError(op, `the engine answered ${what} that breaks ${ENGINE_SCHEMA_DIR}/${op}.json: ${invalid.message}`);
}

function requestError(op: string, error: EngineErrorPayload): EngineRequestError {
  return new EngineRequestError(op, error.type, error.message, error.hint);
}

/**
 * True when `promise` settles within `ms`, else false. The timer is cancelled as soon as the race is decided: a
 * bare `delay()` in the race kept the CLI alive for the rest of its 10 s after the engine had exited (every run sat
 * idle ~9.5 s before exiting).
 */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      delay(ms, false, { signal: timer.signal }),
    ]);
  } finally {
    timer.abort();
  }
}
