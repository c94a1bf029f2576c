/**
 * MultiPL-E candidates per second: the programs multipl-e-js / multipl-e-ts run (prompt + completion + tests, from
 * test/fixtures/multipl-e: the samples files' completions that finish, right and wrong), measured in the same call
 * (alternating, --runs times each):
 *   isolated-vm:       runJavaScript, as the task runs candidates (a fresh context each in a reused isolate), at
 *                      --concurrency candidates at once;
 *   fresh-isolate:     the same runtime in a new isolate per candidate (the design before isolate reuse);
 *   node-spawn:        MultiPL-E's way, `node FILE.js` in a new process per candidate, --concurrency at once;
 *   ts-isolated-vm:    runTypeScript (the compiler API with cached library files, then the isolate);
 *   ts-tsc-node:       MultiPL-E's way, `tsc --target esnext FILE.ts` then `node FILE.js` per candidate.
 * Prints a table with the ratios and writes bench/results/multipl-e-throughput-<machine>-2026-12-03.json (or --out).
 *
 *   npx tsx bench/multipl-e-throughput.ts [--js 3000] [--spawn 200] [--ts 300] [--tsc 6] [--runs 3] [--concurrency N] [--machine NAME] [--out FILE]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type ivm from 'isolated-vm';
import pLimit from 'p-limit';
import { RUN_CLOSURE, newRuntimeIsolate, runJavaScript, type JsLimits } from '../src/sandbox/isolated-vm/js-executor.js';
import { runTypeScript } from '../src/sandbox/isolated-vm/ts-executor.js';
import { readHumanEvalSamples } from '../src/tasks/humaneval/dataset.js';
import { loadMultiplE, multiplEProgram } from '../src/tasks/multipl-e/dataset.js';
import { writeJsonAtomic } from '../src/util/atomic-file.js';
import { packageRoot } from '../src/util/package-root.js';

const require = createRequire(import.meta.url);
const LIMITS: JsLimits = { timeoutMs: 5000, memoryMb: 256, maxOutputBytes: 16 * 1024 };
const TSC = join(dirname(require.resolve('typescript-api/package.json')), 'bin', 'tsc');

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The fixtures' programs whose completions finish (the infinite loop left out: it would time the timeout). */
async function programsOf(language: 'js' | 'ts'): Promise<string[]> {
  const fixtures = join(packageRoot(), 'test', 'fixtures', 'multipl-e');
  const { problems } = await loadMultiplE(language, join(fixtures, `humaneval-${language}.jsonl`));
  const { samples } = await readHumanEvalSamples(join(fixtures, `samples-${language}.jsonl`));
  const byName = new Map(problems.map((problem) => [problem.name, problem]));
  return samples
    .filter((sample) => !sample.completion.includes('while (true)'))
    .map((sample) => multiplEProgram(byName.get(sample.task_id)!, sample.completion));
}

function runNode(args: string[], cwd: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

interface Pass {
  seconds: number;
  candidates_per_second: number;
  passed: number;
  candidates: number;
}

async function timed(count: number, concurrency: number, one: (index: number) => Promise<boolean>): Promise<Pass> {
  const limit = pLimit(concurrency);
  const started = performance.now();
  const verdicts = await Promise.all(Array.from({ length: count }, (_, index) => limit(() => one(index))));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, candidates_per_second: count / seconds, passed: verdicts.filter(Boolean).length, candidates: count };
}

async function freshIsolate(source: string): Promise<boolean> {
  const { Callback } = require('isolated-vm') as typeof ivm;
  const isolate = newRuntimeIsolate(LIMITS.memoryMb);
  try {
    const context = await isolate.createContext();
    const verdict = await context.evalClosure(RUN_CLOSURE, [new Callback(() => undefined), source], { timeout: LIMITS.timeoutMs, result: { copy: true } });
    return (JSON.parse(String(verdict)) as { ok: boolean }).ok;
  } finally {
    isolate.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      js: { type: 'string', default: '3000' },
      spawn: { type: 'string', default: '200' },
      ts: { type: 'string', default: '300' },
      tsc: { type: 'string', default: '6' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string' },
      machine: { type: 'string', default: hostname() },
      load: { type: 'string', describe: 'what else ran on the machine, for the record' },
      out: { type: 'string' },
    },
  });
  const counts = { js: Number(values.js), spawn: Number(values.spawn), ts: Number(values.ts), tsc: Number(values.tsc) };
  const runs = Number(values.runs);
  const concurrency = values.concurrency === undefined ? availableParallelism() : Number(values.concurrency);
  const js = await programsOf('js');
  const ts = await programsOf('ts');
  const dir = await mkdtemp(join(tmpdir(), 'evalpipe-mpe-bench-'));
  const jsFiles = await Promise.all(
    js.map(async (program, index) => {
      const file = join(dir, `p${index}.js`);
      await writeFile(file, program);
      return file;
    }),
  );
  const tsDirs = await Promise.all(
    ts.map(async (program, index) => {
      const each = await mkdtemp(join(dir, `t${index}-`));
      await writeFile(join(each, 'candidate.ts'), program);
      return each;
    }),
  );
  const modes = {
    'isolated-vm': (index: number) => runJavaScript(js[index % js.length]!, LIMITS).then((result) => result.passed),
    'fresh-isolate': (index: number) => freshIsolate(js[index % js.length]!),
    'node-spawn': (index: number) => runNode([jsFiles[index % js.length]!], dir).then((code) => code === 0),
    'ts-isolated-vm': (index: number) => runTypeScript(ts[index % ts.length]!, LIMITS).then((result) => result.passed),
    'ts-tsc-node': async (index: number) => {
      const each = tsDirs[index % ts.length]!;
      if ((await runNode([TSC, '--target', 'esnext', 'candidate.ts'], each)) !== 0) return false;
      return (await runNode(['candidate.js'], each)) === 0;
    },
  } as const;
  const countOf = { 'isolated-vm': counts.js, 'fresh-isolate': counts.js, 'node-spawn': counts.spawn, 'ts-isolated-vm': counts.ts, 'ts-tsc-node': counts.tsc };
  const names = Object.keys(modes) as (keyof typeof modes)[];
  const loadBefore = loadavg();
  // untimed warm-up: the isolate pool, the compiler's library files, the page cache
  for (const name of names) await timed(Math.min(countOf[name], 20), concurrency, modes[name]);
  const measured = Object.fromEntries(names.map((name) => [name, [] as Pass[]])) as Record<keyof typeof modes, Pass[]>;
  for (let run = 0; run < runs; run += 1) {
    for (const name of names) measured[name].push(await timed(countOf[name], concurrency, modes[name]));
  }
  const loadAfter = loadavg();
  await rm(dir, { recursive: true, force: true });
  const rate = Object.fromEntries(names.map((name) => [name, median(measured[name].map((each) => each.candidates_per_second))])) as Record<
    keyof typeof modes,
    number
  >;
  const describe: Record<keyof typeof modes, string> = {
    'isolated-vm': 'evalpipe: runJavaScript, a fresh context per candidate in a reused isolate (memoryLimit, wall-clock timeout)',
    'fresh-isolate': 'the same, but a new isolate (from the runtime snapshot) per candidate instead of a reused one',
    'node-spawn': "MultiPL-E's way: `node FILE.js`, a new process per candidate",
    'ts-isolated-vm': 'evalpipe: runTypeScript, tsc checks via the compiler API (library files parsed once), then the isolate',
    'ts-tsc-node': "MultiPL-E's way: `tsc --target esnext FILE.ts`, then `node FILE.js`, per candidate",
  };
  process.stdout.write(
    `JS programs: ${js.length} distinct, TS: ${ts.length}; concurrency ${concurrency}; median of ${runs} runs; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}\n`,
  );
  process.stdout.write(`${'mode'.padEnd(16)}${'cand/s'.padStart(10)}${'passed'.padStart(12)}  what\n`);
  for (const name of names) {
    const first = measured[name][0]!;
    process.stdout.write(`${name.padEnd(16)}${rate[name].toFixed(1).padStart(10)}${`${first.passed}/${first.candidates}`.padStart(12)}  ${describe[name]}\n`);
  }
  const ratios = {
    js_isolated_vm_vs_node_spawn: rate['isolated-vm'] / rate['node-spawn'],
    js_isolated_vm_vs_fresh_isolate: rate['isolated-vm'] / rate['fresh-isolate'],
    ts_isolated_vm_vs_tsc_node: rate['ts-isolated-vm'] / rate['ts-tsc-node'],
  };
  process.stdout.write(
    `ratios: JS isolated-vm / node-spawn ${ratios.js_isolated_vm_vs_node_spawn.toFixed(1)}x, isolated-vm / fresh-isolate ${ratios.js_isolated_vm_vs_fresh_isolate.toFixed(2)}x, TS isolated-vm / tsc+node ${ratios.ts_isolated_vm_vs_tsc_node.toFixed(1)}x; target 1000 JS/s: ${rate['isolated-vm'] >= 1000 ? 'met' : 'missed'}\n`,
  );
  const record = {
    kind: 'evalpipe.bench.multipl-e-throughput',
    date: new Date().toISOString(),
    machine: {
      name: values.machine,
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? null,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      loadavg_before: loadBefore,
      loadavg_after: loadAfter,
      load_note: values.load ?? null,
    },
    versions: {
      node: process.version,
      'isolated-vm': (require('isolated-vm/package.json') as { version: string }).version,
      typescript: (require('typescript-api/package.json') as { version: string }).version,
    },
    concurrency,
    limits: LIMITS,
    programs: { js: js.length, ts: ts.length, source: 'test/fixtures/multipl-e: prompt + completion + tests for the samples files completions that finish' },
    candidates_per_pass: countOf,
    runs,
    modes: describe,
    median_candidates_per_second: rate,
    ratios,
    target_js_per_second: 1000,
    measured,
  };
  const out = values.out ?? join(packageRoot(), 'bench', 'results', `multipl-e-throughput-${values.machine}-2026-12-03.json`);
  await writeJsonAtomic(out, record);
  process.stdout.write(`wrote ${out}\n`);
}

await main();
