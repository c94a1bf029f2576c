import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CHECKSUM_FIELD } from '../../src/pipeline/store/record-checksum.js';
import { packageRoot } from '../../src/util/package-root.js';

/**
 * Fault-test harness: runs the built CLI (bin/evalpipe.js) as a real child process, watches its record files,
 * kills it (or its engine) at chosen points, and compares run directories record by record.
 *
 * The stages the kill test spreads its kill points over. Adding a stage is one line here: its records file is
 * records/<stage>.jsonl and the command below turns on what it needs.
 */
export const FAULT_STAGES: FaultStage[] = [
  { stage: 'perplexity', units: (c) => c.rows },
  { stage: 'generate', units: (c) => c.humanevalLimit * c.samples },
  { stage: 'execute', units: (c) => c.humanevalLimit * c.samples },
];

/** Only the perplexity stage: the single-fault tests need one stage the engine serves. */
export const PERPLEXITY_ONLY: FaultStage[] = FAULT_STAGES.filter((stage) => stage.stage === 'perplexity');

export interface FaultCommandConfig {
  dataset: string;
  rows: number;
  humanevalLimit: number;
  samples: number;
}

export interface FaultStage {
  stage: string;
  units: (config: FaultCommandConfig) => number;
}

export const HUMANEVAL_FILE = join(packageRoot(), '..', 'shared', 'datasets', 'HumanEval.jsonl.gz');

/** The one command every attempt runs (the same command must resume). */
export function faultCommand(runDir: string, config: FaultCommandConfig, stages: readonly FaultStage[] = FAULT_STAGES, batchSize = 1): string[] {
  const names = stages.map((stage) => stage.stage);
  const humaneval = names.includes('generate') || names.includes('execute');
  return [
    'run',
    '--preset',
    'smoke',
    '--dataset',
    config.dataset,
    '--text-field',
    'text',
    '--rows',
    String(config.rows),
    // One row per engine request: a kill loses at most one row in flight. Any batch size would reproduce the
    // reference bit for bit (fixed work units, the batch-invariant CPU engine: test/cli/batch-size.test.ts).
    '--batch-size',
    String(batchSize),
    '--run-dir',
    runDir,
    ...(humaneval
      ? ['--tasks', 'perplexity,humaneval', '--humaneval', HUMANEVAL_FILE, '--limit', String(config.humanevalLimit), '--n', String(config.samples)]
      : []),
  ];
}

/** Deterministic code-like texts of different lengths, written as a local .jsonl data set. */
export async function writeFaultDataset(path: string, rows: number): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < rows; i += 1) {
    const body = Array.from({ length: 2 + (i % 7) }, (_, j) => `    total_${j} = value_${i} * ${j + 1} + offset  # step ${j}`).join('\n');
    lines.push(JSON.stringify({ text: `def function_${i}(value_${i}, offset=${i % 5}):\n${body}\n    return total_0\n` }));
  }
  await writeFile(path, `${lines.join('\n')}\n`);
}

export interface CliRun {
  child: ChildProcess;
  /** Everything the CLI wrote to stderr so far (logs and progress lines). */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * The shared start of the single-fault tests: 240 rows of texts under `root` and an uninterrupted perplexity-only
 * run of them in `<root>/reference`, to compare the faulted run with.
 */
export async function perplexityReference(root: string): Promise<{ config: FaultCommandConfig; reference: string }> {
  const config: FaultCommandConfig = { dataset: join(root, 'texts.jsonl'), rows: 240, humanevalLimit: 3, samples: 1 };
  await writeFaultDataset(config.dataset, config.rows);
  const reference = join(root, 'reference');
  const result = await startCli(faultCommand(reference, config, PERPLEXITY_ONLY)).exited;
  if (result.code !== 0) throw new Error(`the reference run failed (exit ${result.code}):\n${result.stderr}`);
  return { config, reference };
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): CliRun {
  const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'evalpipe.js'), ...args], {
    cwd: packageRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, stderr: () => stderr };
}

/** Has the stage started (its progress line is out) / finished (its 100% line is out) in this stderr text? */
export function stageStarted(stderr: string, stage: string): boolean {
  return stderr.includes(`\n${stage}: `) || stderr.startsWith(`${stage}: `);
}

export function stageFinished(stderr: string, stage: string): boolean {
  return new RegExp(`(^|\\n)${stage}: 100% (\\d+)/\\2 `).test(stderr);
}

/** Complete records (lines ending in a newline) in a record file right now; 0 when it does not exist. */
export function completeLines(path: string): number {
  if (!existsSync(path)) return 0;
  const data = readFileSync(path);
  let count = 0;
  for (const byte of data) if (byte === 10) count += 1;
  return count;
}

/** Poll until `predicate` holds, or `done` settles first (returns false then), or the time runs out (throws). */
export async function waitUntil(predicate: () => boolean, options: { timeoutMs: number; intervalMs?: number; done?: Promise<unknown> }): Promise<boolean> {
  let finished = false;
  void options.done?.then(() => (finished = true));
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    if (finished) return predicate();
    await delay(options.intervalMs ?? 2);
  }
  throw new Error(`condition not met within ${options.timeoutMs} ms`);
}

/** Direct children of a process (from /proc), e.g. the engine the CLI started. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return children;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface RecordFileCheck {
  records: Map<string, Record<string, unknown>>;
  completeLines: number;
  duplicates: string[];
  /** Bytes after the last newline: a torn record left by a kill (the next run drops it). */
  tornBytes: number;
  corruptLines: number[];
}

/** Read a record file strictly: every complete line must parse; report duplicates and any torn tail. */
export async function checkRecordFile(path: string): Promise<RecordFileCheck> {
  const text = existsSync(path) ? await readFile(path, 'utf8') : '';
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  const records = new Map<string, Record<string, unknown>>();
  const duplicates: string[] = [];
  const corruptLines: number[] = [];
  lines.forEach((line, index) => {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      const key = String(record.key);
      if (records.has(key)) duplicates.push(key);
      else records.set(key, record);
    } catch {
      corruptLines.push(index + 1);
    }
  });
  return { records, completeLines: lines.length, duplicates, tornBytes: Buffer.byteLength(tail), corruptLines };
}

const TIMING_FIELD = /(^|_)(seconds|secs|time|times|elapsed|duration|latency)(_|$)|_at$|_ms$|_s$|^tokens_per_s$/;

/**
 * A record without the fields that measure time, which no two runs share, and without its checksum, which covers
 * them (record-checksum.ts; the readers verified it already).
 */
export function withoutTiming(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([field]) => !TIMING_FIELD.test(field) && field !== CHECKSUM_FIELD));
}

/** results.json without what differs between two runs of the same config (where and when). */
export function comparableResults(results: Record<string, unknown>): Record<string, unknown> {
  const { run_dir: _dir, completed_at: _at, ...rest } = results;
  return rest;
}

/** A seeded random generator, so a failing kill schedule can be replayed (the seed is printed). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
