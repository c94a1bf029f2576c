import pLimit from 'p-limit';
import { availableParallelism } from 'node:os';
import { runJavaScript, type JsExecution, type JsLimits } from '../../sandbox/isolated-vm/js-executor.js';
import { runTypeScript } from '../../sandbox/isolated-vm/ts-executor.js';
import type { MultiplELanguage } from './config.js';

/** One program in its language's isolate: JavaScript as is, TypeScript through tsc's checks first. */
export function runCandidate(language: MultiplELanguage, program: string, limits: JsLimits): Promise<JsExecution> {
  return language === 'ts' ? runTypeScript(program, limits) : runJavaScript(program, limits);
}

/** Candidates at once: isolated-vm runs each isolate on its own thread, so about one per core keeps them busy. */
export function defaultIsolateConcurrency(): number {
  return Math.max(1, availableParallelism());
}

/** Run programs `concurrency` at a time; results in input order, `onResult` as each finishes. */
export async function runCandidates<T extends { program: string }>(
  language: MultiplELanguage,
  items: readonly T[],
  options: { limits: JsLimits; concurrency?: number; signal?: AbortSignal; onResult?: (item: T, result: JsExecution) => Promise<void> | void },
): Promise<JsExecution[]> {
  const limit = pLimit(options.concurrency ?? defaultIsolateConcurrency());
  return Promise.all(
    items.map((item) =>
      limit(async () => {
        options.signal?.throwIfAborted();
        const result = await runCandidate(language, item.program, options.limits);
        await options.onResult?.(item, result);
        return result;
      }),
    ),
  );
}
