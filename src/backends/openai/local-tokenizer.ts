import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../util/package-root.js';
import { enginePythonCommand } from '../engine/python-command.js';
import { StderrTail } from '../engine/stderr-tail.js';
import { RemoteServerError } from './openai-errors.js';
import type { TextTokenizer } from './tokenization.js';

const HELPER = join('src', 'backends', 'openai', 'local_tokenizer.py');

interface Ready {
  bos_token_id: number | null;
  eos_token_id: number | null;
  vocab_size: number;
}

/**
 * --tokenizer: the texts tokenized on this machine by the engine's `tokenizers` library (one long-lived Python
 * helper, local_tokenizer.py, in the engine's environment), without special tokens as the engine's score op does.
 * Used for perplexity windows when the server has no /tokenize.
 */
export class LocalTokenizer implements TextTokenizer {
  readonly kind = 'local' as const;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly stderr: StderrTail,
    readonly spec: string,
    readonly ready: Ready,
  ) {}

  get bosTokenId(): number | null {
    return this.ready.bos_token_id;
  }

  get eosTokenId(): number | null {
    return this.ready.eos_token_id;
  }

  static async start(spec: string, signal?: AbortSignal): Promise<LocalTokenizer> {
    const python = enginePythonCommand();
    const child = spawn(python.executable, [join(packageRoot(), HELPER), spec], { env: python.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr = new StderrTail(20);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
    child.stdin.on('error', () => undefined);
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(tokenizerError(spec, `cannot start ${python.executable} (${error.message})`, stderr)));
      child.once('exit', (code) => reject(tokenizerError(spec, `the tokenizer helper exited (code ${code ?? 'unknown'})`, stderr)));
    });
    failed.catch(() => undefined);
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity })[Symbol.asyncIterator]();
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const first = await Promise.race([lines.next(), failed]);
      if (first.done) throw tokenizerError(spec, 'the tokenizer helper wrote nothing', stderr);
      const message = JSON.parse(first.value) as Partial<Ready> & { ready?: boolean; error?: string };
      if (!message.ready) throw tokenizerError(spec, message.error ?? first.value, stderr);
      const tokenizer = new LocalTokenizer(child, lines, stderr, spec, message as Ready);
      failed.catch(() => undefined);
      return tokenizer;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  encode(texts: readonly string[]): Promise<number[][]> {
    const next = this.queue.then(async () => {
      this.child.stdin.write(`${JSON.stringify({ texts })}\n`);
      const answer = await this.lines.next();
      if (answer.done) throw tokenizerError(this.spec, 'the tokenizer helper stopped', this.stderr);
      const parsed = JSON.parse(answer.value) as { ids?: number[][]; error?: string };
      if (!parsed.ids) throw tokenizerError(this.spec, parsed.error ?? answer.value, this.stderr);
      return parsed.ids;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

function tokenizerError(spec: string, message: string, stderr: StderrTail): RemoteServerError {
  const tail = stderr.text().trim();
  return new RemoteServerError(`--tokenizer ${spec}: ${message}${tail ? `\n${tail}` : ''}`, {
    hint: "give a tokenizer.json, the model directory holding it, or preset:tiny-starcoder2 (the engine's Python environment reads it: bash scripts/setup.sh)",
  });
}
