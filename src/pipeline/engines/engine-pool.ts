import { EngineProcessError } from '../../backends/engine/engine-errors.js';
import type {
  BenchParams,
  BenchResult,
  EngineInfo,
  GenerateParams,
  GenerateResult,
  LoadParams,
  LoadResult,
  ScoreParams,
  ScoreResult,
} from '../../backends/engine/protocol.js';
import type { BackendCallOptions, BenchCallOptions, GenerateCallOptions, ModelBackend, ScoreCallOptions } from '../../backends/model-backend.js';
import { log } from '../../util/log.js';

interface Member {
  label: string;
  backend: ModelBackend;
  busy: boolean;
  dead: boolean;
  requests: number;
}

/**
 * Several engine processes (one per --devices entry, each with the model loaded) as one ModelBackend: each request
 * goes to a free engine (a caller waits for one when all are busy), so the stages, which send up to `parallelism`
 * requests at once (shared-queue.ts), keep every engine busy. An engine that dies (EngineProcessError) is dropped
 * and the request it had in flight is sent again, whole, to another engine: the stage keeps the first record of
 * each unit, so a sample it had already streamed is not written twice. When the last engine dies its error goes
 * to the stage, as with one engine.
 */
export class EnginePool implements ModelBackend {
  private readonly members: Member[];
  private readonly waiting: (() => void)[] = [];

  constructor(engines: readonly { label: string; backend: ModelBackend }[]) {
    this.members = engines.map((engine) => ({ ...engine, busy: false, dead: false, requests: 0 }));
  }

  /** Requests the pool serves at once: its live engines. */
  get parallelism(): number {
    return this.live().length;
  }

  get alive(): boolean {
    return this.live().length > 0;
  }

  /** Requests each engine served, by its device label (logged at close). */
  stats(): { device: string; requests: number; dead: boolean }[] {
    return this.members.map((member) => ({ device: member.label, requests: member.requests, dead: member.dead }));
  }

  info(options?: BackendCallOptions): Promise<EngineInfo> {
    return this.dispatch('info', (backend) => backend.info(options));
  }

  async load(params: LoadParams, options?: BackendCallOptions): Promise<LoadResult> {
    const results = await Promise.all(this.live().map((member) => member.backend.load(params, options)));
    return results[0]!;
  }

  score(params: ScoreParams, options?: ScoreCallOptions): Promise<ScoreResult> {
    return this.dispatch('score', (backend) => backend.score(params, options));
  }

  generate(params: GenerateParams, options?: GenerateCallOptions): Promise<GenerateResult> {
    return this.dispatch('generate', (backend) => backend.generate(params, options));
  }

  bench(params: BenchParams, options?: BenchCallOptions): Promise<BenchResult> {
    return this.dispatch('bench', (backend) => backend.bench(params, options));
  }

  async close(timeoutMs?: number): Promise<void> {
    if (this.members.some((member) => member.requests > 0)) {
      log.info(
        `engines: requests per engine: ${this.stats()
          .map((stat) => `${stat.device} ${stat.requests}${stat.dead ? ' (died)' : ''}`)
          .join(', ')}`,
      );
    }
    await Promise.all(this.members.map((member) => member.backend.close(timeoutMs)));
    for (const wake of this.waiting.splice(0)) wake();
  }

  private live(): Member[] {
    return this.members.filter((member) => !member.dead && member.backend.alive);
  }

  private async dispatch<T>(op: string, call: (backend: ModelBackend) => Promise<T>): Promise<T> {
    for (;;) {
      const member = await this.acquire();
      member.requests += 1;
      try {
        return await call(member.backend);
      } catch (error) {
        if (!(error instanceof EngineProcessError) && member.backend.alive) throw error;
        member.dead = true;
        void member.backend.close().catch(() => undefined); // one that stopped answering is stopped for good
        const left = this.live().length;
        if (left === 0) throw error;
        const why = (error as Error).message.split('\n')[0]; // the first line; the engine's stderr tail is in --verbose
        log.warn(`engines: the engine on ${member.label} died during ${op} (${why}); its request goes to another of the ${left} left`);
      } finally {
        member.busy = false;
        this.waiting.shift()?.();
      }
    }
  }

  /** A free live engine, waiting for one when all are busy. */
  private async acquire(): Promise<Member> {
    for (;;) {
      const live = this.live();
      if (live.length === 0) {
        throw new EngineProcessError('every engine of the run has died', { stderrTail: '', hint: 'run the same command again to resume' });
      }
      const free = live.find((member) => !member.busy);
      if (free) {
        free.busy = true;
        return free;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }
}
