import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withChecksum } from '../../src/pipeline/store/record-checksum.js';
import { recipeImageTag } from '../../src/sandbox/image-recipe.js';
import { packageRoot } from '../../src/util/package-root.js';
import { HUMANEVAL_FILE, checkRecordFile, completeLines, isAlive, startCli, waitUntil, withoutTiming } from './harness.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasDockerd = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v dockerd && docker info'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const LIMIT = 30;
const SAMPLES = 2;

/**
 * A private Docker daemon (own socket, data and exec roots, no bridge or iptables) that this test can restart
 * without disturbing the machine's daemon or anyone else's containers.
 */
class PrivateDockerd {
  readonly socket: string;
  private pid: number | undefined;

  constructor(private readonly dir: string) {
    this.socket = join(dir, 'docker.sock');
  }

  get host(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'dockerd',
      [
        `--data-root=${join(this.dir, 'data')}`,
        `--exec-root=${join(this.dir, 'exec')}`,
        `--pidfile=${join(this.dir, 'docker.pid')}`,
        `--host=${this.host}`,
        '--bridge=none',
        '--iptables=false',
        '--ip-masq=false',
        '--ip6tables=false',
      ],
      { detached: true, stdio: ['ignore', 'ignore', 'ignore'] },
    );
    child.unref();
    this.pid = child.pid;
    await waitUntil(() => this.answers(), { timeoutMs: 60_000, intervalMs: 200 });
  }

  answers(): boolean {
    try {
      execFileSync('docker', ['info'], { env: { ...process.env, DOCKER_HOST: this.host }, stdio: 'ignore', timeout: 10_000 });
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    if (this.pid === undefined || !isAlive(this.pid)) return;
    process.kill(this.pid, 'SIGTERM');
    const pid = this.pid;
    await waitUntil(() => !isAlive(pid), { timeoutMs: 60_000, intervalMs: 100 });
    this.pid = undefined;
  }
}

interface Problem {
  task_id: string;
  prompt: string;
  canonical_solution: string;
}

describe.skipIf(!isRoot || !hasDockerd)('the Docker daemon restarted in mid-execute', () => {
  let root: string;
  let dockerd: PrivateDockerd;
  let generated: string;
  let env: NodeJS.ProcessEnv;
  const command = (runDir: string, stages: string): string[] => [
    'run',
    '--preset',
    'smoke',
    '--tasks',
    'humaneval',
    '--humaneval',
    HUMANEVAL_FILE,
    '--limit',
    String(LIMIT),
    '--n',
    String(SAMPLES),
    '--run-dir',
    runDir,
    '--stages',
    stages,
    '--concurrency',
    '2',
  ];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-fault-docker-'));
    dockerd = new PrivateDockerd(join(root, 'dockerd'));
    await dockerd.start();
    env = { ...process.env, DOCKER_HOST: dockerd.host };
    const image = await recipeImageTag();
    // The image comes from the machine's daemon (scripts/test.sh builds it there; build it here if the recipe changed).
    try {
      execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore' });
    } catch {
      execFileSync(process.execPath, [join(packageRoot(), 'bin', 'evalpipe.js'), 'sandbox', 'build'], { stdio: 'ignore', timeout: 540_000 });
    }
    execFileSync('bash', ['-o', 'pipefail', '-c', `docker save ${image} | DOCKER_HOST=${dockerd.host} docker load`], { stdio: 'ignore', timeout: 240_000 });

    // Phase one (the GPU side): generate with the tiny model, then make the samples worth executing: even samples
    // are the canonical solutions (they pass), odd ones a wrong body (they fail). A restart that turned a pass into
    // a failure, or lost or doubled an execution, shows in the comparison below.
    generated = join(root, 'generated');
    const phaseOne = await startCli(command(generated, 'generate'), env).exited;
    expect(phaseOne.code, phaseOne.stderr).toBe(0);
    const problems = new Map<string, Problem>(
      gunzipSync(readFileSync(HUMANEVAL_FILE))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => {
          const problem = JSON.parse(line) as Problem;
          return [problem.task_id, problem];
        }),
    );
    const file = join(generated, 'records', 'generate.jsonl');
    const records = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const rewritten = records.map((record) => {
      const problem = problems.get(String(record.task_id))!;
      const promptUsed = String(record.prompt_used);
      const rest = problem.prompt.slice(promptUsed.length); // what stripping took off (the prompt's trailing newline)
      // The wrong bodies also sleep, so execute (two at a time) outlasts dockerd's 10 s stop timeout and the restart
      // kills containers in mid-candidate
      // (once per program, however often the tests call it, so the status stays `failed`, never `timeout`).
      const wrong = `${rest}    import time\n    if not globals().get('_slept'):\n        globals()['_slept'] = True\n        time.sleep(1.2)\n    return None\n`;
      const completion = Number(record.sample_index) % 2 === 0 ? `${rest}${problem.canonical_solution}` : wrong;
      return JSON.stringify(withChecksum({ ...record, completion })); // a fixture edit, so its checksum is made anew
    });
    await writeFile(file, `${rewritten.join('\n')}\n`);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    await dockerd?.stop().catch(() => undefined);
    if (root) await rm(root, { recursive: true, force: true }).catch(() => undefined);
  });

  it('re-runs the candidates the restart hit, counts none of them as failures, and loses or doubles nothing', async () => {
    const reference = join(root, 'reference');
    const restarted = join(root, 'restarted');
    await cp(generated, reference, { recursive: true });
    await cp(generated, restarted, { recursive: true });
    const ref = await startCli(command(reference, 'execute,score'), env).exited;
    expect(ref.code, ref.stderr).toBe(0);

    const file = join(restarted, 'records', 'execute.jsonl');
    const run = startCli(command(restarted, 'execute,score'), env);
    await waitUntil(() => completeLines(file) >= 4, { timeoutMs: 120_000, intervalMs: 1, done: run.exited });
    const before = completeLines(file);
    await dockerd.stop();
    // The daemon is down while executions are still to do (the restart really lands in mid-execute).
    const whileDown = completeLines(file);
    await dockerd.start();
    const first = await run.exited;
    let resumedStderr = '';
    if (first.code !== 0) {
      // The run may stop (Docker went away under it) with one clear line; the same command then finishes it.
      const errorLines = first.stderr.split('\n').filter((line) => line.startsWith('evalpipe: '));
      expect(errorLines, first.stderr).toHaveLength(1);
      expect(errorLines[0]).toMatch(/docker/i);
      const second = await startCli(command(restarted, 'execute,score'), env).exited;
      expect(second.code, second.stderr).toBe(0);
      resumedStderr = second.stderr;
    }
    expect(whileDown, 'the daemon must be down while executions remain').toBeLessThan(LIMIT * SAMPLES);

    const want = await checkRecordFile(join(reference, 'records', 'execute.jsonl'));
    const got = await checkRecordFile(file);
    expect(got.duplicates).toEqual([]);
    expect(got.corruptLines).toEqual([]);
    expect(got.completeLines).toBe(LIMIT * SAMPLES);
    const statuses = [...want.records.values()].map((record) => record.status);
    expect(statuses.filter((status) => status === 'passed')).toHaveLength(LIMIT); // every canonical solution passes
    expect(statuses.filter((status) => status === 'failed')).toHaveLength(LIMIT); // every wrong body fails (no timeouts)
    for (const [key, record] of want.records) {
      const { attempts: _a, ...wantRest } = withoutTiming(record);
      const { attempts: _b, ...gotRest } = withoutTiming(got.records.get(key)!);
      expect(gotRest, `${key} ${resumedStderr.slice(-300)}`).toEqual(wantRest);
    }
    const results = (dir: string) => readFile(join(dir, 'results.json'), 'utf8').then((text) => JSON.parse(text).humaneval);
    expect(await results(restarted)).toEqual(await results(reference));
    const retried = [...got.records.values()].filter((record) => Number(record.attempts) > 1).length;
    process.stderr.write(
      `docker restart after ${before}/${LIMIT * SAMPLES} executions (${whileDown} when it was down): first run exit ${first.code}${first.code === 0 ? '' : ' (resumed with the same command)'}, ${retried} candidates retried in the sandbox\n`,
    );
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
