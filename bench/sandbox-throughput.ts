/**
 * Sandbox throughput: candidates per second over HumanEval's 164 canonical solutions x 10, with p50/p99
 * per-candidate latency (queue excluded: from handing the program to a container to its verdict), in both verdict
 * modes measured in the same run (`default`; `isolated`, which makes the default verdict and the isolated one for
 * each candidate), against openai/human-eval's in-process harness (../shared/docs/BASELINES.md: 115 executions/s
 * on the 2-core machine).
 *
 *   npx tsx bench/sandbox-throughput.ts [--humaneval PATH] [--repeats 10] [--runs 3] [--concurrency N] [--out FILE]
 *
 * The headline per mode is the median of --runs timed passes (the machine may be shared); each run is recorded,
 * and the modes alternate run by run so that a change in the machine's load hits both alike.
 *
 * Needs a running Docker daemon and the built image (evalpipe sandbox build). Writes the record (machine, date,
 * versions, figures) to bench/results/sandbox-throughput.json unless --out says otherwise.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, hostname, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadHumanEval, humanEvalIsolatedProgram, humanEvalProgram } from '../src/tasks/humaneval/dataset.js';
import type { VerdictMode } from '../src/sandbox/container-spec.js';
import type { IsolatedProgram } from '../src/sandbox/sandbox-container.js';

import { SandboxPool } from '../src/sandbox/sandbox-pool.js';
import { defaultConcurrency } from '../src/sandbox/sandbox-limits.js';
import { writeJsonAtomic } from '../src/util/atomic-file.js';
import { packageRoot } from '../src/util/package-root.js';

const HUMAN_EVAL_BASELINE = { executionsPerSecond: 115, harness: 'openai/human-eval (exec in forked workers, no container, 4 workers)' };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

function commandOutput(command: string, args: string[]): string | null {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      humaneval: { type: 'string', default: join(packageRoot(), '..', 'shared', 'datasets', 'HumanEval.jsonl.gz') },
      repeats: { type: 'string', default: '10' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string' },
      out: { type: 'string', default: join(packageRoot(), 'bench', 'results', 'sandbox-throughput.json') },
    },
  });
  const repeats = Number(values.repeats);
  const concurrency = values.concurrency === undefined ? defaultConcurrency() : Number(values.concurrency);
  const { problems, provenance } = await loadHumanEval(values.humaneval);
  const candidates = Array.from({ length: repeats }, () =>
    problems.map((problem) => ({
      program: humanEvalProgram(problem, problem.canonical_solution),
      isolated: humanEvalIsolatedProgram(problem, problem.canonical_solution),
    })),
  ).flat();

  const loadBefore = loadavg().map((value) => Math.round(value * 100) / 100);
  const runs = Number(values.runs);
  const modes: VerdictMode[] = ['default', 'isolated'];
  const pools = Object.fromEntries(
    await Promise.all(modes.map(async (mode) => [mode, await SandboxPool.open({ concurrency, verdicts: mode })] as const)),
  ) as Record<VerdictMode, SandboxPool>;
  const measured = Object.fromEntries(
    modes.map((mode) => [mode, { statuses: {} as Record<string, number>, runSeconds: [] as number[], latencies: [] as number[], candidateMs: [] as number[] }]),
  ) as Record<VerdictMode, { statuses: Record<string, number>; runSeconds: number[]; latencies: number[]; candidateMs: number[] }>;
  const execute = (mode: VerdictMode, candidate: { program: string; isolated: IsolatedProgram }) =>
    pools[mode].execute(candidate.program, mode === 'isolated' ? { isolated: candidate.isolated } : {});
  try {
    for (const mode of modes) {
      // Warm-up: one pass over a few problems so first-touch costs do not count.
      await Promise.all(candidates.slice(0, concurrency * 4).map((candidate) => execute(mode, candidate)));
    }
    for (let run = 0; run < runs; run += 1) {
      for (const mode of run % 2 === 0 ? modes : [...modes].reverse()) {
        const figures = measured[mode];
        const started = performance.now();
        await Promise.all(
          candidates.map(async (candidate) => {
            const result = await execute(mode, candidate);
            const both = mode === 'isolated' ? `${result.isolation?.default.status}+${result.status}` : result.status;
            figures.statuses[both] = (figures.statuses[both] ?? 0) + 1;
            figures.candidateMs.push(result.durationMs);
          }),
        );
        figures.runSeconds.push((performance.now() - started) / 1000);
      }
    }
    for (const mode of modes) {
      // Latency without queueing: one candidate at a time through a warm container.
      for (const candidate of candidates.slice(0, 164)) {
        const t0 = performance.now();
        await execute(mode, candidate);
        measured[mode].latencies.push(performance.now() - t0);
      }
    }
  } finally {
    await Promise.all(modes.map((mode) => pools[mode].close()));
  }
  const summarise = (mode: VerdictMode) => {
    const figures = measured[mode];
    const seconds = [...figures.runSeconds].sort((a, b) => a - b)[Math.floor(figures.runSeconds.length / 2)]!;
    const latencies = [...figures.latencies].sort((a, b) => a - b);
    const candidateMs = [...figures.candidateMs].sort((a, b) => a - b);
    return {
      runs,
      seconds_median: Math.round(seconds * 1000) / 1000,
      candidates_per_second: Math.round((candidates.length / seconds) * 10) / 10,
      candidates_per_second_each_run: figures.runSeconds.map((value) => Math.round((candidates.length / value) * 10) / 10),
      program_executions_per_candidate: mode === 'isolated' ? 2 : 1,
      statuses: figures.statuses,
      latency_ms_unloaded: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length },
      candidate_process_ms_under_load: { p50: percentile(candidateMs, 50), p99: percentile(candidateMs, 99), n: candidateMs.length },
      containers_started: pools[mode].stats.containersStarted,
      containers_replaced: pools[mode].stats.containersReplaced,
    };
  };
  const results = { default: summarise('default'), isolated: summarise('isolated') };
  const pool = pools.default;
  const packageJson = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const dockerodeJson = JSON.parse(readFileSync(join(packageRoot(), 'node_modules', 'dockerode', 'package.json'), 'utf8')) as { version: string };
  const record = {
    schema_version: 2,
    benchmark: 'sandbox-throughput',
    date: new Date().toISOString(),
    machine: {
      hostname: hostname(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: release(),
      card: 'none (CPU only: the sandbox does not use the GPU)',
      load_average_before: loadBefore,
    },
    versions: {
      evalpipe: packageJson.version,
      node: process.version,
      dockerode: dockerodeJson.version,
      docker_server: commandOutput('docker', ['version', '--format', '{{.Server.Version}}']),
      image: pool.image,
      image_python: commandOutput('docker', [
        'run',
        '--rm',
        '--network',
        'none',
        pool.image,
        'python3',
        '-c',
        'import platform; print(platform.python_version())',
      ]),
    },
    workload: {
      humaneval: provenance.id,
      humaneval_sha256: provenance.files[0]?.sha256 ?? provenance.contentSha256,
      candidates: candidates.length,
      repeats,
      what: 'canonical solutions: prompt + canonical_solution + test + check(entry_point)',
    },
    sandbox: {
      concurrency,
      limits: pool.limits,
      isolation:
        'warm containers: no network, read-only root, tmpfs /tmp, cap-drop ALL, no-new-privileges, memory/pids/CPU limits; one fresh forked process per candidate (uid 10001, no capability) with rlimits and a wall timeout. isolated: the runner starts as root with 6 capabilities, and after the default verdict runs the tests in a second process (uid 10002) that calls the candidate with plain data',
    },
    results,
    isolated_vs_default: Math.round((results.isolated.candidates_per_second / results.default.candidates_per_second) * 1000) / 1000,
    baseline: HUMAN_EVAL_BASELINE,
    speedup_vs_baseline: {
      default: Math.round((results.default.candidates_per_second / HUMAN_EVAL_BASELINE.executionsPerSecond) * 100) / 100,
      isolated: Math.round((results.isolated.candidates_per_second / HUMAN_EVAL_BASELINE.executionsPerSecond) * 100) / 100,
    },
  };
  await writeJsonAtomic(values.out, record);
  const rows = [
    ['mode', 'candidates/s', 'each run', 'vs default', 'vs human-eval', 'p50 ms', 'p99 ms', 'statuses'],
    ...(['default', 'isolated'] as const).map((mode) => [
      mode,
      String(results[mode].candidates_per_second),
      results[mode].candidates_per_second_each_run.join(' / '),
      (results[mode].candidates_per_second / results.default.candidates_per_second).toFixed(2),
      String(record.speedup_vs_baseline[mode]),
      results[mode].latency_ms_unloaded.p50.toFixed(1),
      results[mode].latency_ms_unloaded.p99.toFixed(1),
      Object.entries(results[mode].statuses)
        .map(([status, count]) => `${status} ${count}`)
        .join(', '),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  process.stdout.write(`${rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')).join('\n')}\n`);
  process.stderr.write(
    `sandbox throughput (${candidates.length} candidates, concurrency ${concurrency}, median of ${runs} runs per mode); wrote ${values.out}\n`,
  );
}

await main();
