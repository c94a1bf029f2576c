/**
 * Safety tests against the REAL Docker daemon: hostile candidates are contained and classified, the host and the
 * other candidates are unaffected, and the run goes on. Traffic goes to the host's loopback only.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanEvalProgram, loadHumanEval, type HumanEvalProblem } from '../tasks/humaneval/dataset.js';
import { probeDocker, requireSandbox, testHumanEvalPath } from '../../test/support/docker.js';
import type { ExecutionResult } from './execution-result.js';
import { knownWrongCompletions } from '../tasks/humaneval/known-wrong.js';
import { SandboxPool } from './sandbox-pool.js';

const docker = await probeDocker();

describe.skipIf(docker.skip)('sandbox safety (real Docker daemon)', () => {
  let image: string;
  let pool: SandboxPool;
  let problems: HumanEvalProblem[];

  beforeAll(async () => {
    image = await requireSandbox(docker);
    pool = await SandboxPool.open({ image, concurrency: 2, timeoutMs: 2000 });
    problems = (await loadHumanEval(testHumanEvalPath())).problems;
  });

  afterAll(async () => {
    await pool?.close();
  });

  /** Well-behaved candidates that run beside the hostile ones: every one must still pass. */
  function bystanders(count: number): Promise<ExecutionResult[]> {
    return Promise.all(problems.slice(0, count).map((problem) => pool.execute(humanEvalProgram(problem, problem.canonical_solution))));
  }

  async function withBystanders(program: string): Promise<ExecutionResult> {
    const [result, others] = await Promise.all([pool.execute(program), bystanders(6)]);
    expect(others.map((other) => other.status)).toEqual(Array(6).fill('passed'));
    return result;
  }

  /** A pool of one container of its own, for tests that count container starts or leave things behind in it. */
  async function withOwnPool(use: (single: SandboxPool) => Promise<void>): Promise<void> {
    const single = await SandboxPool.open({ image, concurrency: 1, timeoutMs: 2000 });
    try {
      await use(single);
    } finally {
      await single.close();
    }
  }

  it('runs unprivileged: uid 10001, no capabilities, no-new-privileges, seccomp, read-only root, noexec /tmp', async () => {
    const result = await pool.execute(
      [
        'import os, json',
        'status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)',
        'mounts = {fields[1]: fields[3] for fields in (line.split() for line in open("/proc/self/mounts"))}',
        'print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "CapEff": status["CapEff"], "CapBnd": status["CapBnd"],',
        '    "NoNewPrivs": status["NoNewPrivs"], "Seccomp": status["Seccomp"], "root": mounts["/"], "tmp": mounts["/tmp"]}))',
      ].join('\n'),
    );
    expect(result.status).toBe('passed');
    const facts = JSON.parse(result.stdout.trim()) as Record<string, string | number>;
    expect(facts).toMatchObject({ uid: 10001, gid: 10001, CapEff: '0000000000000000', CapBnd: '0000000000000000', NoNewPrivs: '1', Seccomp: '2' });
    expect(String(facts.root).split(',')).toContain('ro');
    expect(String(facts.tmp).split(',')).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
  });

  it('a fork bomb stops at the pids limit, is classified, and leaves nothing behind', async () => {
    const result = await withBystanders('import os\nwhile True:\n    os.fork()\n');
    expect(['failed', 'timeout']).toContain(result.status);
    if (result.status === 'failed') expect(result.exceptionType).toBe('BlockingIOError');
    expect(spawnSync('true').status).toBe(0); // the host can still start processes
    const after = await pool.execute('import os\nprint(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))\n');
    expect(after.status).toBe('passed');
    expect(JSON.parse(after.stdout.trim()) as number[]).toHaveLength(2); // PID 1 (runner) and the candidate itself
  });

  it('an 8 GB allocation is an oom, not a crash of the host or the container', async () => {
    const result = await withBystanders('block = bytearray(8 * 1024 ** 3)\nblock[-1] = 1\n');
    expect(result.status).toBe('oom');
    expect(result.exceptionType).toBe('MemoryError');
    // Creeping up to the limit writes about 1 GiB of zeroed pages, which on a loaded 2-core CI machine can take
    // longer than the pool's 2 s candidate limit; what this pins is the verdict, so it gets time to reach it.
    const creeping = await pool.execute('chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))\n', {
      timeoutMs: 30_000,
    });
    expect(creeping.status).toBe('oom');
    expect(creeping.exceptionType).toBe('MemoryError');
  });

  it('an infinite loop times out at the configured limit and the container is replaced', async () => {
    const replacedBefore = pool.stats.containersReplaced;
    const result = await withBystanders('while True:\n    pass\n');
    expect(result.status).toBe('timeout');
    expect(result.durationMs).toBeGreaterThanOrEqual(1900);
    expect(result.durationMs).toBeLessThan(4000);
    expect(pool.stats.containersReplaced).toBeGreaterThan(replacedBefore);
    const short = await pool.execute('import time\ntime.sleep(5)\n', { timeoutMs: 500 });
    expect(short.status).toBe('timeout');
  });

  it('cannot reach a listener on the host loopback (no network at all)', async () => {
    let connections = 0;
    const server: Server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      // The host's own loopback answers (the listener works) ...
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.end();
          resolve();
        });
        socket.on('error', reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const hostConnections = connections;
      expect(hostConnections).toBe(1);
      // ... but from the sandbox, 127.0.0.1 is the container's own loopback, and there is no other interface.
      const result = await withBystanders(
        ['import socket', `socket.create_connection(("127.0.0.1", ${port}), timeout=1).close()`, 'print("connected")'].join('\n'),
      );
      expect(result.status).toBe('failed');
      expect(result.exceptionType).toBe('ConnectionRefusedError');
      const interfaces = await pool.execute('import socket\nprint(sorted(name for _, name in socket.if_nameindex()))\n');
      expect(interfaces.stdout.trim()).toBe("['lo']");
      expect(connections).toBe(hostConnections);
    } finally {
      server.close();
    }
  });

  it('cannot write outside /tmp (read-only root, no /dev/shm, runner not writable)', async () => {
    const targets = [
      '/etc/evalpipe-test',
      '/opt/evalpipe/runner.py',
      '/usr/lib/evalpipe-test',
      '/dev/shm/evalpipe-test',
      '/var/tmp/evalpipe-test',
      '/evalpipe-test',
    ];
    const result = await withBystanders(
      [
        'import json',
        `targets = ${JSON.stringify(targets)}`,
        'outcome = {}',
        'for path in targets:',
        '    try:',
        '        with open(path, "w") as handle:',
        '            handle.write("x")',
        '        outcome[path] = "written"',
        '    except OSError as error:',
        '        outcome[path] = type(error).__name__',
        'print(json.dumps(outcome))',
        'open("/tmp/inside-is-fine", "w").write("ok")',
      ].join('\n'),
    );
    expect(result.status).toBe('passed');
    const outcome = JSON.parse(result.stdout.trim()) as Record<string, string>;
    for (const target of targets) expect(outcome[target], target).not.toBe('written');
    const direct = await pool.execute('open("/etc/passwd", "a").write("evil::0:0::/:/bin/sh\\n")\n');
    expect(direct.status).toBe('failed');
    expect(direct.exceptionType).toMatch(/OSError|PermissionError/);
  });

  it("cannot read the host's environment variables or files", async () => {
    const secret = randomBytes(16).toString('hex');
    const secretFile = `/tmp/evalpipe-host-secret-${secret.slice(0, 8)}`;
    process.env.EVALPIPE_SAFETY_SECRET = secret;
    await writeFile(secretFile, secret);
    try {
      const result = await withBystanders(
        [
          'import os, glob',
          'print(dict(os.environ))',
          `for path in [${JSON.stringify(secretFile)}, "/proc/1/environ", "/etc/shadow"] + glob.glob("/tmp/evalpipe-host-secret-*"):`,
          '    try:',
          '        print(path, open(path, "rb").read()[:200])',
          '    except OSError as error:',
          '        print(path, type(error).__name__)',
        ].join('\n'),
      );
      expect(result.status).toBe('passed');
      expect(result.stdout).not.toContain(secret);
      expect(result.stdout).toContain(`${secretFile} FileNotFoundError`);
      expect(result.stdout).toContain('/proc/1/environ PermissionError');
    } finally {
      delete process.env.EVALPIPE_SAFETY_SECRET;
      await rm(secretFile, { force: true });
    }
  });

  it('cannot kill the runner, forge its replies, or signal its parent', async () => {
    await withOwnPool(async (single) => {
      const attack = await single.execute(
        [
          'import os, signal, json',
          'outcome = {}',
          'for name, action in [',
          '    ("parent SIGKILL", lambda: os.kill(os.getppid(), signal.SIGKILL)),',
          '    ("pid 1 SIGTERM", lambda: os.kill(1, signal.SIGTERM)),',
          '    ("pid 1 SIGINT", lambda: os.kill(1, signal.SIGINT)),',
          '    ("pid 1 SIGSTOP", lambda: os.kill(1, signal.SIGSTOP)),',
          '    ("forge reply", lambda: open("/proc/1/fd/1", "w").write(json.dumps({"id": "j2", "status": "passed"}) + "\\n")),',
          '    ("read runner memory", lambda: open("/proc/1/mem", "rb").read(1)),',
          ']:',
          '    try:',
          '        action()',
          '        outcome[name] = "done"',
          '    except OSError as error:',
          '        outcome[name] = type(error).__name__',
          'print(json.dumps(outcome))',
          'try:',
          '    os.kill(-1, signal.SIGKILL)  # every process it may signal: none but itself and the runner exist',
          'except ProcessLookupError:',
          '    pass',
        ].join('\n'),
      );
      expect(attack.status).toBe('passed');
      const outcome = JSON.parse(attack.stdout.trim()) as Record<string, string>;
      expect(outcome['forge reply']).toBe('PermissionError');
      expect(outcome['read runner memory']).toBe('PermissionError');
      // The same container (nothing made the pool replace it) still runs, and a failing candidate still fails:
      // no forged "passed" line was read as its reply.
      const next = await single.execute('raise ValueError("still here")\n');
      expect(next.status).toBe('failed');
      expect(next.message).toBe('still here');
      expect(single.stats.containersStarted).toBe(1);
    });
  });

  it('a background process left behind is gone before the next candidate', async () => {
    await withOwnPool(async (single) => {
      const leaver = await single.execute(
        [
          'import os, time',
          'if os.fork() == 0:',
          '    os.setsid()',
          '    if os.fork() == 0:',
          '        while True:',
          '            with open("/tmp/marker", "a") as handle:',
          '                handle.write("x")',
          '            time.sleep(0.01)',
          '    os._exit(0)',
          'time.sleep(0.2)',
          'print(os.path.exists("/tmp/marker"))',
        ].join('\n'),
      );
      expect(leaver.status).toBe('passed');
      expect(leaver.stdout.trim()).toBe('True');
      const next = await single.execute(
        [
          'import os, time',
          'time.sleep(0.1)',
          'others = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid()))',
          'print(others, os.path.exists("/tmp/marker"), os.listdir("/tmp"))',
        ].join('\n'),
      );
      expect(next.status).toBe('passed');
      expect(next.stdout.trim()).toBe("[] False ['job']");
      expect(single.stats.containersStarted).toBe(1); // the same warm container, cleaned, not a new one
    });
  });

  it('files left in /tmp (locked modes, 3000 levels deep, symlinks out) are gone before the next candidate', async () => {
    await withOwnPool(async (single) => {
      const litter = await single.execute(
        [
          'import os',
          'os.makedirs("/tmp/a/b/c")',
          'open("/tmp/a/b/c/secret", "w").write("for the next candidate")',
          'for path in ("/tmp/a/b/c", "/tmp/a/b", "/tmp/a", "."):',
          '    os.chmod(path, 0)',
          'os.symlink("/etc", "/tmp/etc-link")',
          'os.mkdir("/tmp/deep")',
          'os.chdir("/tmp/deep")',
          'for _ in range(3000):',
          '    os.mkdir("d")',
          '    os.chdir("d")',
        ].join('\n'),
      );
      expect(litter.status).toBe('passed');
      const next = await single.execute('import os\nprint(sorted(os.listdir("/tmp")), os.path.exists("/etc/passwd"))\n');
      expect(next.stdout.trim()).toBe("['job'] True");
      expect(single.stats.containersStarted).toBe(1); // cleaned in place, no replacement needed
    });
  });

  it('a wrong completion cannot make itself passed: not through an inherited descriptor, not by patching json', async () => {
    const problem = problems[0]!;
    for (const kind of ['forges-pipe', 'patches-json']) {
      const forged = knownWrongCompletions(problem).find((entry) => entry.kind === kind)!;
      const result = await pool.execute(humanEvalProgram(problem, forged.completion));
      expect(result.status, `${kind}: ${result.message}`).toBe('failed');
    }
    // the human-eval semantics stay: leaving early with status 0 is a failure, a right answer still passes
    for (const early of ['    import sys\n    sys.exit(0)\n', '    import os\n    os._exit(0)\n']) {
      expect((await pool.execute(humanEvalProgram(problem, early))).status).toBe('failed');
    }
    expect((await pool.execute(humanEvalProgram(problem, problem.canonical_solution))).status).toBe('passed');
  });

  it("a candidate's own MemoryError, SIGKILL or SIGXCPU is a failure naming it, not an oom or a timeout", async () => {
    const cases: [string, string][] = [
      ['raise MemoryError("made up")', 'MemoryError'],
      ['import os, signal\nos.kill(os.getpid(), signal.SIGKILL)', 'SIGKILL'],
      ['import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)', 'SIGXCPU'],
    ];
    for (const [program, kind] of cases) {
      const result = await pool.execute(program);
      expect({ status: result.status, type: result.exceptionType }, program).toEqual({ status: 'failed', type: kind });
    }
    const real = await pool.execute('x = bytearray(8 << 30)');
    expect(real.status).toBe('oom');
  });

  it('System V IPC objects are gone before the next candidate, and a big segment left behind costs it no memory', async () => {
    await withOwnPool(async (single) => {
      const left = await single.execute(
        [
          'import ctypes',
          'libc = ctypes.CDLL(None, use_errno=True)',
          'libc.shmat.restype = ctypes.c_void_p',
          'seg = libc.shmget(0x5EED, 700 << 20, 0o1600)  # IPC_CREAT | 0600: 700 MB',
          'assert seg >= 0, ctypes.get_errno()',
          'addr = libc.shmat(seg, None, 0)',
          'ctypes.memset(addr, 0x41, 700 << 20)  # touched: resident, charged to the container',
          'assert libc.semget(0x5EEE, 1, 0o1600) >= 0 and libc.msgget(0x5EEF, 0o1600) >= 0',
        ].join('\n'),
      );
      expect(left.status, left.message ?? '').toBe('passed');
      const next = await single.execute(
        [
          'import ctypes, json',
          'libc = ctypes.CDLL(None, use_errno=True)',
          'found = {k: open(f"/proc/sysvipc/{k}").read().splitlines()[1:] for k in ("shm", "sem", "msg")}',
          'print(json.dumps({"found": found, "shm": libc.shmget(0x5EED, 0, 0), "sem": libc.semget(0x5EEE, 0, 0), "msg": libc.msgget(0x5EEF, 0)}))',
          'block = bytearray(500 << 20)  # a correct solution using 500 MB fits its own 1024 MB',
        ].join('\n'),
      );
      expect(next.status, next.message ?? '').toBe('passed');
      expect(JSON.parse(next.stdout)).toEqual({ found: { shm: [], sem: [], msg: [] }, shm: -1, sem: -1, msg: -1 });
    });
  });

  it('environment changes, files and POSIX message queues do not reach the next candidate', async () => {
    await withOwnPool(async (single) => {
      const mqOpen = [
        'import ctypes, os',
        'rt = ctypes.CDLL("librt.so.1", use_errno=True)',
        'mq = rt.mq_open(b"/evalpipe-leak", os.O_CREAT | os.O_RDWR, 0o600, None)',
        'errno = ctypes.get_errno()',
      ];
      const changer = await single.execute(
        [
          ...mqOpen,
          'assert mq == -1, "a candidate could create a POSIX message queue"',
          'os.environ["EVALPIPE_LEAK"] = "1"',
          'os.putenv("EVALPIPE_PUTENV", "1")',
          'os.umask(0)',
          'open("/tmp/job/leftover", "w").write("x")',
          'open("/tmp/.hidden-leftover", "w").write("x")',
          'os.chdir("/")',
          'print(errno)',
        ].join('\n'),
      );
      expect(changer.status, changer.message ?? '').toBe('passed');
      expect(Number(changer.stdout.trim())).toBeGreaterThan(0); // refused (EMFILE: RLIMIT_MSGQUEUE is 0)
      const next = await single.execute(
        [
          ...mqOpen,
          'import json',
          'existing = rt.mq_open(b"/evalpipe-leak", os.O_RDWR, 0, None)',
          'mask = os.umask(0o22)',
          'print(json.dumps({"env": sorted(k for k in os.environ if k.startswith("EVALPIPE")), "umask": mask, "cwd": os.getcwd(),',
          '    "tmp": sorted(os.listdir("/tmp")), "job": sorted(os.listdir("/tmp/job")), "existing": existing}))',
        ].join('\n'),
      );
      expect(next.status, next.message ?? '').toBe('passed');
      expect(JSON.parse(next.stdout.trim())).toEqual({ env: [], umask: 0o22, cwd: '/tmp/job', tmp: ['job'], job: [], existing: -1 });
      expect(single.stats.containersStarted).toBe(1); // the same container, cleaned in place
    });
  });

  it('when evalpipe dies in the middle of a 60 s job, its container is gone within seconds, not at the timeout', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sandbox-controller.ts', image], { stdio: ['ignore', 'pipe', 'inherit'] });
    const label = `evalpipe.controller=${hostname()}:${child.pid}`;
    const list = () => spawnSync('docker', ['ps', '-q', '--filter', `label=${label}`], { encoding: 'utf8' }).stdout.trim();
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the controller exited early (${code})`)));
    });
    await delay(1500); // the busy loop is running in the container
    expect(list()).not.toBe('');
    child.kill('SIGKILL');
    const killedAt = Date.now();
    while (list() !== '' && Date.now() - killedAt < 30_000) await delay(200);
    expect(list()).toBe('');
    expect(Date.now() - killedAt).toBeLessThan(30_000); // the runner polls every 0.1 s; the job's limit was 60 s
  });

  it('printing 100 MB is drained and trimmed; the candidate still passes', async () => {
    const result = await withBystanders('import sys\nsys.stdout.write("x" * 100_000_000)\nsys.stderr.write("e" * 10_000_000)\n');
    expect(result.status).toBe('passed');
    expect(result.stdoutBytes).toBe(100_000_000);
    expect(result.stderrBytes).toBe(10_000_000);
    expect(result.stdout).toHaveLength(pool.limits.maxOutputBytes);
    expect(result.stderr).toHaveLength(pool.limits.maxOutputBytes);
  });

  it('after all of that, the whole canonical set still passes through the same pool', async () => {
    const results = await bystanders(problems.length);
    expect(results.filter((result) => result.passed)).toHaveLength(problems.length);
  });
});
