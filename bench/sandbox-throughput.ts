/**
 * Sandbox throughput: executions per second over HumanEval's 164 canonical solutions x 10, with p50/p99
 * per-candidate latency (queue excluded: from handing the program to a container to its verdict), against
 * openai/human-eval's in-process harness (../shared/docs/BASELINES.md: 115 executions/s on the 2-core machine).
 *
 *   npx tsx bench/sandbox-throughput.ts [--humaneval PATH] [--repeats 10] [--runs 3] [--concurrency N] [--out FILE]
 *
 * The headline is the median of --runs timed passes (the machine may be shared); each run is recorded.
 *
 * Needs a running Docker daemon and the built image (evalpipe sandbox build). Writes the record (machine, date,
 * versions, figures) to bench/results/sandbox-throughput.json unless --out says otherwise.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, hostname, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadHumanEval, humanEvalProgram } from '../src/datasets/humaneval.js';
import { repoRoot } from '../src/sandbox/image-recipe.js';
import { SandboxPool } from '../src/sandbox/sandbox-pool.js';
import { defaultConcurrency } from '../src/sandbox/sandbox-limits.js';
import { writeJsonAtomic } from '../src/util/atomic-file.js';

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
      humaneval: { type: 'string', default: join(repoRoot(), '..', 'shared', 'datasets', 'HumanEval.jsonl.gz') },
      repeats: { type: 'string', default: '10' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string' },
      out: { type: 'string', default: join(repoRoot(), 'bench', 'results', 'sandbox-throughput.json') },
    },
  });
  const repeats = Number(values.repeats);
  const concurrency = values.concurrency === undefined ? defaultConcurrency() : Number(values.concurrency);
  const { problems, provenance } = await loadHumanEval(values.humaneval);
  const programs = Array.from({ length: repeats }, () => problems.map((problem) => humanEvalProgram(problem, problem.canonical_solution))).flat();

  const loadBefore = loadavg().map((value) => Math.round(value * 100) / 100);
  const pool = await SandboxPool.open({ concurrency });
  const statuses: Record<string, number> = {};
  const runs = Number(values.runs);
  const runSeconds: number[] = [];
  const latencies: number[] = [];
  const candidateMs: number[] = [];
  let seconds: number;
  try {
    // Warm-up: one pass over a few problems so first-touch costs do not count.
    await Promise.all(programs.slice(0, concurrency * 4).map((program) => pool.execute(program)));
    for (let run = 0; run < runs; run += 1) {
      const started = performance.now();
      await Promise.all(
        programs.map(async (program) => {
          const result = await pool.execute(program);
          statuses[result.status] = (statuses[result.status] ?? 0) + 1;
          candidateMs.push(result.durationMs);
        }),
      );
      runSeconds.push((performance.now() - started) / 1000);
    }
    seconds = [...runSeconds].sort((a, b) => a - b)[Math.floor(runSeconds.length / 2)]!;
    // Latency without queueing: one candidate at a time through a warm container.
    for (const program of programs.slice(0, 164)) {
      const t0 = performance.now();
      await pool.execute(program);
      latencies.push(performance.now() - t0);
    }
  } finally {
    await pool.close();
  }
  latencies.sort((a, b) => a - b);
  candidateMs.sort((a, b) => a - b);
  const executionsPerSecond = programs.length / seconds;
  const packageJson = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
  const dockerodeJson = JSON.parse(readFileSync(join(repoRoot(), 'node_modules', 'dockerode', 'package.json'), 'utf8')) as { version: string };
  const record = {
    schema_version: 1,
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
      image_python: commandOutput('docker', ['run', '--rm', '--network', 'none', pool.image, 'python3', '-c', 'import platform; print(platform.python_version())']),
    },
    workload: {
      humaneval: provenance.id,
      humaneval_sha256: provenance.files[0]?.sha256 ?? provenance.contentSha256,
      candidates: programs.length,
      repeats,
      what: 'canonical solutions: prompt + canonical_solution + test + check(entry_point)',
    },
    sandbox: {
      concurrency,
      limits: pool.limits,
      isolation:
        'warm containers: no network, read-only root, tmpfs /tmp, uid 10001, cap-drop ALL, no-new-privileges, memory/pids/CPU limits; one fresh forked process per candidate with rlimits and a wall timeout',
      containers_started: pool.stats.containersStarted,
      containers_replaced: pool.stats.containersReplaced,
    },
    results: {
      runs,
      seconds_median: Math.round(seconds * 1000) / 1000,
      executions_per_second: Math.round(executionsPerSecond * 10) / 10,
      executions_per_second_each_run: runSeconds.map((value) => Math.round((programs.length / value) * 10) / 10),
      statuses,
      latency_ms_unloaded: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length },
      candidate_process_ms_under_load: { p50: percentile(candidateMs, 50), p99: percentile(candidateMs, 99), n: candidateMs.length },
    },
    baseline: HUMAN_EVAL_BASELINE,
    speedup_vs_baseline: Math.round((executionsPerSecond / HUMAN_EVAL_BASELINE.executionsPerSecond) * 100) / 100,
  };
  await writeJsonAtomic(values.out, record);
  process.stdout.write(`${JSON.stringify(record.results, null, 2)}\n`);
  process.stderr.write(
    `sandbox: ${record.results.executions_per_second} executions/s (median of ${runs} runs of ${programs.length}: ${record.results.seconds_median} s, concurrency ${concurrency}) vs human-eval ${HUMAN_EVAL_BASELINE.executionsPerSecond}/s; wrote ${values.out}\n`,
  );
}

await main();
