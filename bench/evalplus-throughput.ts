/**
 * evalplus-style executions per second: the programs humaneval-plus and mbpp-plus run (a candidate + the harness
 * with per-test limits + one suite), here the canonical solutions of the test fixtures on both suites × --repeats,
 * run in the same call (alternating, --runs times each) three ways:
 *   sandbox: our Docker sandbox's warm pool (a fresh forked process per program inside a warm container);
 *   spawn:   evalplus's approach emulated, no container: one fresh `python3` subprocess per program;
 *   spawn-nosite: the same with `python3 -S` (no site-packages, so the harness's numpy stand-in, as in the sandbox);
 *   fork:    the same, a process forked from a warm Python worker per program (as evalplus's multiprocessing does).
 * All at --concurrency programs at once. Prints a table and writes the record to
 * bench/results/evalplus-throughput-<machine>-2026-12-03.json (or --out).
 *
 *   npx tsx bench/evalplus-throughput.ts [--repeats 50] [--runs 3] [--concurrency N] [--machine NAME] [--out FILE]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SandboxPool } from '../src/sandbox/sandbox-pool.js';
import { defaultConcurrency } from '../src/sandbox/sandbox-limits.js';
import { calibrate } from '../src/tasks/evalplus/execute.js';
import { plusProgram, suiteTimeoutMs, timeLimits } from '../src/tasks/evalplus/program.js';
import { loadHumanEvalPlus } from '../src/tasks/humaneval-plus/dataset.js';
import { loadMbppPlus } from '../src/tasks/mbpp-plus/dataset.js';
import { writeJsonAtomic } from '../src/util/atomic-file.js';
import { packageRoot } from '../src/util/package-root.js';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '50' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string' },
      machine: { type: 'string', default: hostname() },
      out: { type: 'string' },
    },
  });
  const repeats = Number(values.repeats);
  const runs = Number(values.runs);
  const concurrency = values.concurrency === undefined ? defaultConcurrency() : Number(values.concurrency);
  const fixtures = join(packageRoot(), 'test', 'fixtures', 'evalplus');
  const problems = [
    ...(await loadHumanEvalPlus({ source: join(fixtures, 'humanevalplus.jsonl'), baseSource: join(fixtures, 'humaneval-base.jsonl') })).problems,
    ...(await loadMbppPlus({ source: join(fixtures, 'mbppplus.jsonl') })).problems,
  ];
  const pool = await SandboxPool.open({ concurrency });
  const programs: { program: string; timeoutMs: number }[] = [];
  for (const problem of problems) {
    const calibration = await calibrate(pool, problem);
    for (const suite of ['base', 'plus'] as const) {
      const limits = timeLimits(suite === 'base' ? calibration.base_times : calibration.plus_times, 1, 4);
      programs.push({ program: plusProgram(problem, problem.canonical_solution, suite, limits), timeoutMs: suiteTimeoutMs(limits, 1) });
    }
  }
  const jobs = Array.from({ length: repeats }, () => programs).flat();
  const script = join(packageRoot(), 'bench', 'evalplus_process_per_candidate.py');
  const input = JSON.stringify(jobs.map((job) => ({ program: job.program, timeout_s: job.timeoutMs / 1000 })));
  const measured: Record<'sandbox' | 'spawn' | 'spawn-nosite' | 'fork', { seconds: number; executions_per_second: number; passed: number }[]> = {
    sandbox: [],
    spawn: [],
    'spawn-nosite': [],
    fork: [],
  };
  // one untimed warm-up pass in the sandbox (containers already started; page cache)
  await Promise.all(programs.map((job) => pool.execute(job.program, { timeoutMs: job.timeoutMs })));
  for (let run = 0; run < runs; run += 1) {
    const started = performance.now();
    const results = await Promise.all(jobs.map((job) => pool.execute(job.program, { timeoutMs: job.timeoutMs })));
    const seconds = (performance.now() - started) / 1000;
    measured.sandbox.push({ seconds, executions_per_second: jobs.length / seconds, passed: results.filter((result) => result.passed).length });
    for (const mode of ['spawn', 'spawn-nosite', 'fork'] as const) {
      const child = spawnSync('python3', [script, '--mode', mode, '--workers', String(concurrency)], { input, encoding: 'utf8', maxBuffer: 1 << 24 });
      if (child.status !== 0) throw new Error(`${mode} baseline failed: ${child.stderr}`);
      const parsed = JSON.parse(child.stdout) as { seconds: number; executions_per_second: number; passed: number };
      measured[mode].push({ seconds: parsed.seconds, executions_per_second: parsed.executions_per_second, passed: parsed.passed });
    }
  }
  await pool.close();
  const rows = (['sandbox', 'spawn', 'spawn-nosite', 'fork'] as const).map((mode) => ({
    mode,
    executions_per_second: median(measured[mode].map((each) => each.executions_per_second)),
    passed_of: `${measured[mode][0]!.passed}/${jobs.length}`,
  }));
  const describe = {
    sandbox: 'Docker sandbox warm pool (evalpipe): a forked process per program in a warm container, cleaned after each',
    spawn: 'evalplus approach emulated: a fresh python3 subprocess per program, no container (host site-packages: real numpy)',
    'spawn-nosite': 'the same with python3 -S (no site-packages: the numpy stand-in, as in the sandbox)',
    fork: 'evalplus approach emulated: a multiprocessing fork of a warm worker per program, no container',
  };
  process.stdout.write(`programs per pass: ${jobs.length} (${programs.length} distinct × ${repeats}), concurrency ${concurrency}, median of ${runs} runs\n`);
  process.stdout.write(`${'mode'.padEnd(14)}${'exec/s'.padStart(10)}${'passed'.padStart(12)}  what\n`);
  for (const row of rows)
    process.stdout.write(`${row.mode.padEnd(14)}${row.executions_per_second.toFixed(1).padStart(10)}${row.passed_of.padStart(12)}  ${describe[row.mode]}\n`);
  const python = execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim();
  const record = {
    kind: 'evalpipe.bench.evalplus-throughput',
    date: new Date().toISOString(),
    machine: {
      name: values.machine,
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? null,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      loadavg_before: loadavg(),
    },
    host_python: python,
    sandbox_image: pool.image,
    concurrency,
    programs: { distinct: programs.length, repeats, per_pass: jobs.length, source: 'canonical solutions of test/fixtures/evalplus on base and plus suites' },
    runs,
    modes: describe,
    median_executions_per_second: Object.fromEntries(rows.map((row) => [row.mode, row.executions_per_second])),
    sandbox_vs_spawn: rows[0]!.executions_per_second / rows[1]!.executions_per_second,
    sandbox_vs_spawn_nosite: rows[0]!.executions_per_second / rows[2]!.executions_per_second,
    sandbox_vs_fork: rows[0]!.executions_per_second / rows[3]!.executions_per_second,
    measured,
  };
  const out = values.out ?? join(packageRoot(), 'bench', 'results', `evalplus-throughput-${values.machine}-2026-12-03.json`);
  await writeJsonAtomic(out, record);
  process.stdout.write(`wrote ${out}\n`);
}

await main();
